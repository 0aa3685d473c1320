import FileFleet
import Foundation

/// Nodes on a private network on this machine: one Linux network namespace per node, each with a
/// veth link to a bridge that this host is on too (`hostAddress`), where the test's servers
/// listen. A node's link can be cut (its host end down: packets vanish, no reset, as when a
/// cable is pulled or a machine freezes) and restored. Needs root and `ip` (iproute2).
///
/// Names carry this process's pid, so that a lab a killed test left behind is removed by the next
/// one (`removeStale`).
public final class NetworkLab: Sendable {
    public struct Node: Sendable {
        public let namespace: String
        /// The host end of the node's link.
        let hostLink: String
        public let address: String

        /// Runs `command` inside the node.
        public func command(_ command: [String]) -> [String] { ["/usr/sbin/ip", "netns", "exec", namespace] + command }
    }

    public let nodes: [Node]
    public let hostAddress: String
    /// The lab's network in CIDR notation.
    public let network: String
    let bridge: String

    /// A lab with `count` nodes, 10.250.X.2, .3, … with the host at 10.250.X.1.
    public init(nodes count: Int) throws {
        Self.removeStale()
        let tag = "\(getpid())"
        let subnet = "10.250.\(Int(getpid()) % 250)"
        bridge = "ffb\(tag)"
        hostAddress = "\(subnet).1"
        network = "\(subnet).0/24"
        try Self.ip(["link", "add", bridge, "type", "bridge"])
        try Self.ip(["addr", "add", "\(hostAddress)/24", "dev", bridge])
        try Self.ip(["link", "set", bridge, "up"])
        var nodes: [Node] = []
        for i in 0..<count {
            let node = Node(namespace: "ffn\(tag)-\(i)", hostLink: "ffv\(tag)h\(i)", address: "\(subnet).\(i + 2)")
            let inner = "ffv\(tag)n\(i)"
            try Self.ip(["netns", "add", node.namespace])
            try Self.ip(["link", "add", node.hostLink, "type", "veth", "peer", "name", inner])
            try Self.ip(["link", "set", inner, "netns", node.namespace])
            try Self.ip(["link", "set", node.hostLink, "master", bridge, "up"])
            try Self.ip(["-n", node.namespace, "addr", "add", "\(node.address)/24", "dev", inner])
            try Self.ip(["-n", node.namespace, "link", "set", inner, "up"])
            try Self.ip(["-n", node.namespace, "link", "set", "lo", "up"])
            nodes.append(node)
        }
        self.nodes = nodes
    }

    /// Cuts the node off: its link goes down on the host's side.
    public func cut(_ node: Node) throws { try Self.ip(["link", "set", node.hostLink, "down"]) }

    public func restore(_ node: Node) throws { try Self.ip(["link", "set", node.hostLink, "up"]) }

    /// Removes the namespaces and links (the processes in them should be gone first).
    public func remove() {
        for node in nodes { _ = try? Self.ip(["netns", "delete", node.namespace]) }
        _ = try? Self.ip(["link", "delete", bridge])
    }

    /// Whether this machine can make a lab (root, iproute2, namespaces allowed).
    public static var isAvailable: Bool {
        Command.isRoot && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }

    /// Labs of test processes that are gone.
    static func removeStale() {
        let namespaces = (try? Command.run("/usr/sbin/ip", ["netns", "list"])) ?? ""
        for line in namespaces.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("ffn"), let pid = Int32(name.dropFirst(3).split(separator: "-").first ?? ""),
                  !Command.isAlive(pid) else { continue }
            _ = try? ip(["netns", "delete", name])
            _ = try? ip(["link", "delete", "ffb\(pid)"])
        }
    }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        try Command.run("/usr/sbin/ip", arguments)
    }
}
