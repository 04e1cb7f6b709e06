package sqldb

// Prepared reports whether db holds q prepared.
func Prepared(db *DB, q string) bool {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	return db.stmts.ready[q] != nil
}
