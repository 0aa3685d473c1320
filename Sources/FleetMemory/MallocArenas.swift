// The one file of FleetMemory: glibc's malloc tuning, so that no domain code imports a C module.
internal import CMalloc

/// glibc's malloc arenas. By default each thread that allocates may get an arena of its own, up to
/// 8 per core, and each arena keeps what it once held.
public enum MallocArenas {
    /// Caps the arenas at `count`; false when glibc refused. Call at start-up, before threads allocate.
    @discardableResult
    public static func cap(_ count: Int) -> Bool {
        mallopt(M_ARENA_MAX, Int32(clamping: count)) == 1
    }
}
