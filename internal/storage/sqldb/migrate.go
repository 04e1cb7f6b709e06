package sqldb

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// Migrate applies the module's embedded migrations to db. Each module keeps
// its own version table (goose_<module>), so modules migrate independently.
// fsys holds the module's numbered .sql files at its root.
func Migrate(ctx context.Context, db *DB, module string, fsys fs.FS) error {
	dialect := goose.DialectSQLite3
	if db.dialect == Postgres {
		dialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(dialect, db.writer, fsys,
		goose.WithTableName("goose_"+module),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", module, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s on %s: %w", module, db.name, err)
	}
	return nil
}

// MigrationsDir returns the folder "migrations" of a module's embedded
// files, where its numbered .sql files live:
//
//	//go:embed migrations/*.sql
//	var migrations embed.FS
//	func Migrations() fs.FS { return sqldb.MigrationsDir(migrations) }
func MigrationsDir(embedded fs.FS) fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the folder is embedded at compile time
	}
	return sub
}

// MigrateAll applies the module's migrations to every physical database the
// router knows.
func MigrateAll(ctx context.Context, r *Router, module string, fsys fs.FS) error {
	for _, db := range r.DBs() {
		if err := Migrate(ctx, db, module, fsys); err != nil {
			return err
		}
	}
	return nil
}
