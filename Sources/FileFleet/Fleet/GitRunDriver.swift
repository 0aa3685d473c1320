import FleetPostgres
import Foundation

/// Git mode's part of a sync (SPEC §6.3): planning a run, and deciding whether an open run can go on.
extension RunDriver {
    /// Plans and stores a new git run. `full` forces the full listing (the previous run was
    /// discarded). A plan too big to import directly calls `large` (which starts the workers and
    /// the producer) before it is stored.
    func planGitRun(sourceID: String, root: String, full: Bool = false,
                    large: @Sendable () -> Void) async throws -> RunRecord {
        let planner = GitPlanner(schema: settings.schema)
        let filter = PathFilter(includes: options.includes, excludes: options.excludes)
        var planned = try await db { c in
            try await planner.plan(sourceID: sourceID, root: root, filter: filter, forceFull: full, on: c)
        }
        // Paths too long to be keys (SPEC §6.11): on disk, quarantined under a stand-in key; gone,
        // their quarantine row leaves.
        let (fits, longKeys, longGone) = LongPath.setAside(planned.paths, root: root)
        // Names that are not valid UTF-8 are planned and quarantined as a directory walk's are.
        planned.paths = fits + longKeys + planned.invalidNames
        // The worktree paths are keys too; a long one is found again by `git status` while it is there.
        planned.worktree.removeAll { $0.utf8.count > LongPath.maxBytes }
        for key in longKeys { log.event("quarantined", ["reason": LongPath.reason, "path": key]) }
        let plan = planned
        if plan.full {
            try MassDeletion.check(deleting: plan.deletions, of: plan.stored, root: root, allowed: options.allowMassDelete)
        }
        if plan.paths.count > options.directMax { large() }  // the group join overlaps storing the plan
        for name in plan.invalidNames { log.event("quarantined", ["reason": InvalidName.reason, "path": name]) }
        let run = try await db { c in
            try await lease.fenced(on: c) { c in
                let run = try await planner.createRun(plan, sourceID: sourceID, token: lease.token, maxFileBytes: options.maxFileBytes,
                                                      maxAttempts: options.maxAttempts, on: c)
                let quarantine = Quarantine(schema: settings.schema)
                try await quarantine.recordLongPaths(longKeys, gone: longGone, run: run.id, sourceID: sourceID, on: c)
                // A full listing sees every name; a diff only the changed ones.
                try await quarantine.recordInvalidNames(plan.invalidNames, gone: plan.full ? nil : plan.invalidGone,
                                                        run: run.id, sourceID: sourceID, on: c)
                return run
            }
        }
        log.event("planned", ["run": String(run.id), "source": sourceID, "mode": "git",
                              "basis": plan.full ? "full_listing" : "diff", "pin": plan.pin ?? "none",
                              "listed": String(plan.listed), "planned": String(run.planned),
                              "removed": String(plan.removals.count)])
        return run
    }

    /// An open git run whose pin no longer exists (history rewritten, objects pruned) cannot
    /// advance the bookmark to it: it is ended as `aborted`, and the caller plans afresh with a
    /// full listing. Returns whether `run` may be resumed.
    func keepsPin(_ run: RunRecord, root: String) async throws -> Bool {
        guard run.mode == "git", let pin = run.pin, GitRepository.isWorkTree(root) else { return true }
        let present = try await GitRepository.withRepository(root: root) { try $0.hasCommit(pin) }
        if present { return true }
        try await db { c in try await lease.fenced(on: c) { c in try await store.abandon(run: run.id, on: c) } }
        log.event("discarded", ["run": String(run.id), "source": run.sourceID, "reason": "pin_unreachable", "pin": pin])
        return false
    }
}
