// A consumer for FleetKafkaTests to run in a child process and SIGKILL: it polls and never commits.
// Usage: kafka-test-consumer BROKERS TOPIC GROUP
import FleetKafka
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: kafka-test-consumer BROKERS TOPIC GROUP\n".utf8))
    exit(2)
}
var configuration = KafkaConfiguration(brokers: arguments[1], clientID: "kafka-test-consumer")
configuration.sessionTimeout = .seconds(3)
configuration.heartbeatInterval = .milliseconds(500)
configuration.maxPollInterval = .seconds(10)

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

let consumer: KafkaConsumer
do {
    consumer = try KafkaConsumer(configuration: configuration, group: arguments[3], topics: [arguments[2]])
} catch {
    FileHandle.standardError.write(Data("kafka-test-consumer: \(error)\n".utf8))
    exit(1)
}
Task {
    for await event in consumer.events {
        if case .assigned(let partitions) = event {
            say("assigned \(partitions.map { String($0.partition) }.sorted().joined(separator: ","))")
        }
    }
}
var received = 0
while true {
    let messages = try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(200))
    received += messages.count
    if !messages.isEmpty { say("received \(received)") }
}
