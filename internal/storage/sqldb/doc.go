// Package sqldb is Strata's SQL storage building block: it opens databases
// (SQLite now; PostgreSQL slots in behind the same DB type), applies each
// module's embedded migrations, runs transactions, translates driver errors
// into strata errors, and routes every logical shard to the physical database
// that holds it.
//
// Module stores never open databases themselves. They receive a *Router and
// ask it for the database of an ID (Router.ForID) or of a key that is not an
// ID (Router.ForKey), so that the same store code runs on one SQLite file,
// several SQLite files, or many PostgreSQL shards.
//
// SQL written by modules is portable: $1-style placeholders (which SQLite
// also accepts), BIGINT for integers and Unix-millisecond timestamps, TEXT
// for strings and encoded bytes, BOOLEAN.
package sqldb
