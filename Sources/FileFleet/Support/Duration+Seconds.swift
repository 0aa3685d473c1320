extension Duration {
    /// Whole and fractional seconds, for SQL intervals.
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
