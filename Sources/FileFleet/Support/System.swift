import Foundation

public enum System {
    public static var coreCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
    public static var hostName: String { ProcessInfo.processInfo.hostName }
}
