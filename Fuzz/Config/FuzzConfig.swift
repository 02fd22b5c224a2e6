import FuzzSupport

/// Fuzzes the cluster.conf loader (`ClusterConfig.swift`, compiled here from the vigil target's
/// source through a symlink): the input is a cluster.conf; its lines of the form `VIGIL_X=Y`
/// are also applied as environment variables. Loading may fail with a `ConfigError`, never trap.
@main
enum FuzzConfig {
    static func main() {
        FuzzMain.run("FuzzConfig") { input in
            let text = String(decoding: input, as: UTF8.self)
            var config = ClusterConfig()
            if (try? ClusterConfigLoader.apply(toml: text, source: "fuzz.conf", to: &config)) != nil {
                _ = try? ClusterConfigLoader.validate(config, source: "fuzz.conf")
            }
            var environment: [String: String] = [:]
            for line in text.split(separator: "\n") where line.hasPrefix("VIGIL_") {
                let parts = line.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
            }
            if !environment.isEmpty {
                var fromEnvironment = ClusterConfig()
                if (try? ClusterConfigLoader.apply(environment: environment, to: &fromEnvironment)) != nil {
                    _ = try? ClusterConfigLoader.validate(fromEnvironment, source: "environment")
                }
            }
            _ = ClusterConfigLoader.parseDuration(text)
            _ = try? ClusterConfigLoader.timestampValue(.string(text))
        }
    }
}
