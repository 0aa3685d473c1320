public import FleetPostgres

/// FileFleet's tables, in one Postgres schema: `filefleet` in production, a fresh one per test.
/// `documents` is the output users query (SPEC §5); the others hold progress and coordination.
public struct Schema: Sendable {
    public let name: String

    public init(_ name: String = "filefleet") {
        self.name = name
    }

    /// A table's schema-qualified, quoted name, for `\(unescaped:)` in queries.
    public func table(_ table: String) -> String { quoteIdentifier(name) + "." + quoteIdentifier(table) }

    public var sources: String { table("sources") }
    public var runs: String { table("runs") }
    public var plannedPaths: String { table("planned_paths") }
    public var checkpoints: String { table("checkpoints") }
    public var documents: String { table("documents") }
    public var leases: String { table("leases") }
    public var failures: String { table("failures") }
    public var workers: String { table("workers") }

    /// Applies what is missing; safe when several processes migrate at once.
    @discardableResult
    public func migrate(_ pool: PostgresPool) async throws -> [Int] {
        try await Migrator(schema: name, table: "schema_migrations", migrations: Self.migrations + Self.gitMigrations).migrate(on: pool)
    }

    /// Migrations run with `search_path` set to the schema, so table names are unqualified.
    static let migrations = [
        Migration(version: 1, name: "fleet", sql: """
            CREATE TABLE sources (
                id         text PRIMARY KEY,
                root       text NOT NULL,
                mode       text NOT NULL CHECK (mode IN ('directory', 'git')),
                bookmark   text,
                created_at timestamptz NOT NULL DEFAULT now()
            );

            -- One row per attempt to bring a source up to date. A run that is not finished is
            -- resumed by the next sync of its source (same id, same plan, same pin).
            CREATE TABLE runs (
                id          bigserial PRIMARY KEY,
                source_id   text NOT NULL REFERENCES sources (id),
                mode        text NOT NULL,
                pin         text,
                state       text NOT NULL DEFAULT 'running'
                            CHECK (state IN ('running', 'completed', 'completed_with_failures', 'aborted')),
                planned     bigint NOT NULL DEFAULT 0,
                lease_token bigint NOT NULL,
                -- How strict workers are with this run's files (sync's --max-file-bytes, --max-attempts).
                max_file_bytes bigint  NOT NULL DEFAULT 67108864,
                max_attempts   integer NOT NULL DEFAULT 3,
                started_at  timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz
            );
            CREATE UNIQUE INDEX runs_one_open_per_source ON runs (source_id) WHERE state = 'running';

            -- The plan of a run: every path it must bring to its state on disk.
            CREATE TABLE planned_paths (
                run_id bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                path   text   NOT NULL,
                PRIMARY KEY (run_id, path)
            );

            -- Append-only: a path is done for a run exactly when it has a row here. Written in the
            -- same transaction as the document, before the Kafka offset is committed.
            CREATE TABLE checkpoints (
                run_id   bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                path     text   NOT NULL,
                outcome  text   NOT NULL CHECK (outcome IN ('imported', 'unchanged', 'deleted', 'failed')),
                worker   text   NOT NULL,
                done_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run_id, path)
            );

            CREATE TABLE documents (
                source_id         text        NOT NULL,
                path              text        NOT NULL,
                sha256            text        NOT NULL,
                size              bigint      NOT NULL,
                mtime             timestamptz NOT NULL,
                kind              text        NOT NULL CHECK (kind IN ('markdown', 'text', 'binary')),
                title             text,
                frontmatter       jsonb,
                frontmatter_error text,
                body              text,
                run_id            bigint      NOT NULL,
                imported_at       timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (source_id, path)
            );
            -- lz4 halves the server's cost per file where the server has it (SPEC §10).
            DO $$ BEGIN
                ALTER TABLE documents ALTER COLUMN body SET COMPRESSION lz4;
            EXCEPTION WHEN OTHERS THEN NULL;
            END $$;

            CREATE TABLE leases (
                name         text PRIMARY KEY,
                holder       text,
                token        bigint NOT NULL DEFAULT 0,
                heartbeat_at timestamptz,
                expires_at   timestamptz,
                acquired_at  timestamptz
            );

            CREATE TABLE failures (
                source_id  text        NOT NULL,
                path       text        NOT NULL,
                reason     text        NOT NULL,
                message    text        NOT NULL,
                attempts   integer     NOT NULL DEFAULT 1,
                run_id     bigint,
                first_seen timestamptz NOT NULL DEFAULT now(),
                last_seen  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (source_id, path)
            );

            CREATE TABLE workers (
                id           text PRIMARY KEY,
                host         text NOT NULL,
                pid          integer NOT NULL,
                state        text NOT NULL,
                imported     bigint NOT NULL DEFAULT 0,
                started_at   timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL DEFAULT now()
            );
            """),
        // When the worker last committed a batch: a worker whose batches fail steps aside only
        // when another one is making progress (a shared outage is not a sick worker).
        Migration(version: 2, name: "workers_progress", sql: """
            ALTER TABLE workers ADD COLUMN progress_at timestamptz;
            """),
        // Why the last sync of a run that is still open stopped (an aborted sync leaves its run
        // to be resumed): `status` shows it. Cleared when a sync takes the run up again.
        Migration(version: 3, name: "runs_stop", sql: """
            ALTER TABLE runs ADD COLUMN stop_reason text, ADD COLUMN stop_error text, ADD COLUMN stopped_at timestamptz;
            """),
        // The token becomes a key of the lease row, so that a fenced transaction can lock the row
        // FOR KEY SHARE (see `LeaseStore.fenced`): an update that changes the token (a takeover, a
        // forced release) still waits for it, a heartbeat (no key changed) no longer does.
        Migration(version: 4, name: "leases_token_key", sql: """
            CREATE UNIQUE INDEX leases_name_token ON leases (name, token);
            """),
        // The plan and checkpoint rows of a run no longer check that their run exists, row by row:
        // the check cost the server 6.6 s of the 10.6 s it took to store a 1,000,000-path plan, and
        // the same per checkpoint. Both are only ever written after their run row, in the
        // coordinator's fenced transaction or by a worker that looked the run up first, and runs
        // are never deleted.
        Migration(version: 5, name: "run_rows_unchecked", sql: """
            ALTER TABLE planned_paths DROP CONSTRAINT IF EXISTS planned_paths_run_id_fkey;
            ALTER TABLE checkpoints DROP CONSTRAINT IF EXISTS checkpoints_run_id_fkey;
            """),
        // A secret per run: the coordinator signs each path message with it, so that a worker
        // knows a signed path was planned without asking the database (a probe of `planned_paths`
        // per path, 7 µs of server a file). Runs made before it have none: their messages are
        // checked against the plan as before.
        Migration(version: 6, name: "runs_message_key", sql: """
            ALTER TABLE runs ADD COLUMN message_key bytea;
            """),
    ]
}

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
