public import FleetPostgres
public import Foundation

extension Schema {
    /// Per git run, the paths `git status` showed changed or untracked when it was planned: their
    /// rows came from the working tree rather than the pinned commit, so the next run checks them
    /// again (an uncommitted edit that is reverted, an untracked file that is deleted or ignored).
    public var gitWorktreePaths: String { table("git_worktree_paths") }

    /// Numbered apart from the base migrations so that others can be added without renumbering.
    static let gitMigrations = [
        Migration(version: 100, name: "git_worktree_paths", sql: """
            CREATE TABLE git_worktree_paths (
                run_id bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                path   text   NOT NULL,
                PRIMARY KEY (run_id, path)
            );
            """),
    ]
}

extension RunStore {
    public func source(_ id: String, on c: PostgresConnection) async throws -> SourceRecord? {
        try await c.query("SELECT root, mode, bookmark FROM \(unescaped: schema.sources) WHERE id = \(id)").first.map { row in
            SourceRecord(id: id, root: try row.decode(String.self, 0), mode: try row.decode(String.self, 1),
                         bookmark: try row.decode(String?.self, 2))
        }
    }

    /// Records the mode a new run of the source uses. A source that changes mode (a directory that
    /// became a git work tree, or the reverse) loses its bookmark: its next git run lists the full
    /// tree and reconciles. Call inside the lease's fenced transaction.
    public func adoptMode(_ mode: String, sourceID: String, on c: PostgresConnection) async throws {
        try await c.execute("""
            UPDATE \(unescaped: schema.sources)
               SET mode = \(mode), bookmark = CASE WHEN mode = \(mode) THEN bookmark END
             WHERE id = \(sourceID) AND mode IS DISTINCT FROM \(mode)
            """)
    }

    /// Moves a git source's bookmark to the pin of its completed run. Call inside the fenced finalize.
    public func advanceBookmark(sourceID: String, to pin: String?, on c: PostgresConnection) async throws {
        try await c.execute("UPDATE \(unescaped: schema.sources) SET bookmark = \(pin) WHERE id = \(sourceID)")
    }

    /// Checkpoints written before `instant` (database time): work banked by earlier invocations.
    public func checkpointCount(run: Int64, before instant: Date, on c: PostgresConnection) async throws -> Int {
        try await c.query("""
            SELECT count(*) FROM \(unescaped: schema.checkpoints) WHERE run_id = \(run) AND done_at < \(instant)
            """)[0].decode(Int.self, 0)
    }

    /// The worktree paths of the source's last completed run.
    public func lastWorktreePaths(sourceID: String, on c: PostgresConnection) async throws -> [String] {
        try await c.query("""
            SELECT w.path FROM \(unescaped: schema.gitWorktreePaths) w
             WHERE w.run_id = (SELECT max(id) FROM \(unescaped: schema.runs)
                                WHERE source_id = \(sourceID) AND state IN ('completed', 'completed_with_failures'))
            """).map { try $0.decode(String.self, 0) }
    }

    /// Ends a run that can no longer complete (its pin vanished in a history rewrite). Fenced.
    public func abandon(run: Int64, on c: PostgresConnection) async throws {
        try await c.execute("""
            UPDATE \(unescaped: schema.runs) SET state = 'aborted', finished_at = now() WHERE id = \(run) AND state = 'running'
            """)
    }
}
