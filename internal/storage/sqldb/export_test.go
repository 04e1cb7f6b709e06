package sqldb

// Prepared reports whether db holds q prepared.
func Prepared(db *DB, q string) bool {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	return db.stmts.ready[q] != nil
}

// Queued reports how many transactions wait for db's group committer.
func Queued(db *DB) int {
	db.commits.mu.Lock()
	defer db.commits.mu.Unlock()
	return len(db.commits.queue)
}
