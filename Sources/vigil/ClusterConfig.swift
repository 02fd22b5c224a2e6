import Detection
import Foundation
import Protocol
import TOMLKit

/// Everything cluster.conf says, after defaults, the file, `VIGIL_*` environment variables
/// and flags have been applied, in that order.
struct ClusterConfig: Sendable, Equatable {
    var clusterName = "vigil"
    var listen = "127.0.0.1:7070"
    var databasePath = "data/coordinator.sqlite"
    var heartbeatIntervalMs: Int64 = 1_000
    var leaseTimeoutMs: Int64 = 6_000
    var checkpointIntervalMs: Int64 = 10_000
    var kafka = KafkaSettings(brokers: "127.0.0.1:9092")
    /// Detection settings, with `InputLimits` on (a bare `DetectionConfig()` has none).
    var detection = DetectionConfig.withInputLimits
    /// `[retention]`: how long the coordinator keeps window summaries (and late events, malformed
    /// records) and anomalies (and history), by the time it stored them.
    var retentionWindowsMs: Int64 = 86_400_000
    var retentionAnomaliesMs: Int64 = 30 * 86_400_000
    /// `[alerts]`: no alerts while `alertWebhookURL` is empty.
    var alertWebhookURL = ""
    var alertMinSeverity: Severity = .high
    var alertDashboardURL = ""
    /// `[security]`: TLS files, token files, `protect_reads` (paths only: see `SecurityConfig`;
    /// the tokens themselves are read when a command starts, and may come from
    /// `VIGIL_CLUSTER_TOKEN` / `VIGIL_OPERATOR_TOKEN`).
    var security = SecurityConfig()

    var workerSettings: WorkerSettings {
        WorkerSettings(
            clusterName: clusterName, kafka: kafka, detection: detection,
            heartbeatIntervalMs: heartbeatIntervalMs, leaseTimeoutMs: leaseTimeoutMs,
            checkpointIntervalMs: checkpointIntervalMs)
    }
}

/// A configuration mistake, naming the source (file or environment variable), the key and what was expected.
struct ConfigError: Error, CustomStringConvertible, Equatable {
    var source: String
    var key: String
    var message: String

    var description: String { "\(source): \(key): \(message)" }
}

/// Loads cluster.conf. The schema is one table of keys, so that file and environment share
/// one parser and every error names the key and the expected type.
enum ClusterConfigLoader {
    /// A value from the file or the environment, before it is checked against the schema.
    enum RawValue: Sendable, CustomStringConvertible {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)

        var description: String {
            switch self {
            case .string(let s): "\"\(s)\""
            case .int(let i): String(i)
            case .double(let d): String(d)
            case .bool(let b): String(b)
            }
        }

        var typeName: String {
            switch self {
            case .string: "a string"
            case .int: "an integer"
            case .double: "a number"
            case .bool: "a boolean"
            }
        }
    }

    typealias Setter = @Sendable (inout ClusterConfig, RawValue) throws(ConfigProblem) -> Void

    /// What went wrong with one value; the loader adds source and key.
    struct ConfigProblem: Error, Sendable {
        var message: String
    }

    static let keys: [(key: String, setter: Setter)] = [
        ("cluster.name", string { $0.clusterName = $1 }),
        ("coordinator.listen", string { $0.listen = $1 }),
        ("coordinator.database", string { $0.databasePath = $1 }),
        ("coordinator.heartbeat_interval", duration { $0.heartbeatIntervalMs = $1 }),
        ("coordinator.lease_timeout", duration { $0.leaseTimeoutMs = $1 }),
        ("coordinator.checkpoint_interval", duration { $0.checkpointIntervalMs = $1 }),
        ("kafka.brokers", string { $0.kafka.brokers = $1 }),
        ("kafka.topic", string { $0.kafka.topic = $1 }),
        ("kafka.partitions", integer(1...10_000) { $0.kafka.partitions = Int32($1) }),
        ("kafka.start_offset", oneOf(["earliest", "latest"]) { $0.kafka.startOffset = $1 }),
        ("detection.window", duration { $0.detection.windowMs = $1 }),
        ("detection.slide", duration { $0.detection.slideMs = $1 }),
        ("detection.allowed_lateness", duration { $0.detection.allowedLatenessMs = $1 }),
        ("detection.baseline_windows", integer(2...1_000) { $0.detection.baselineWindows = $1 }),
        ("detection.min_history", integer(1...1_000) { $0.detection.minHistory = $1 }),
        ("detection.z_score_threshold", positive { $0.detection.zScoreThreshold = $1 }),
        ("detection.volume_spike_ratio", positive { $0.detection.volumeSpikeRatio = $1 }),
        ("detection.policy", policy { $0.detection.policy = $1 }),
        ("detection.cooldown", duration { $0.detection.cooldownMs = $1 }),
        ("detection.volume_spike_min_trades", integer(0...1_000_000) { $0.detection.volumeSpikeMinTrades = $1 }),
        ("detection.severity_medium", positive { $0.detection.severityCuts = cuts($0.detection) { $0.medium = $1 }($1) }),
        ("detection.severity_high", positive { $0.detection.severityCuts = cuts($0.detection) { $0.high = $1 }($1) }),
        ("detection.severity_critical", positive { $0.detection.severityCuts = cuts($0.detection) { $0.critical = $1 }($1) }),
        ("detection.quality_medium_magnitude", positive { $0.detection.qualityMediumMagnitude = $1 }),
        ("detection.isolation_trees", integer(1...1_000) { $0.detection.isolationForest = forest($0.detection) { $0.trees = $1 }($1) }),
        ("detection.isolation_sample_size", integer(2...1_024) { $0.detection.isolationForest = forest($0.detection) { $0.sampleSize = $1 }($1) }),
        ("detection.isolation_history", integer(2...10_000) { $0.detection.isolationForest = forest($0.detection) { $0.historyWindows = $1 }($1) }),
        ("detection.isolation_retrain_every", integer(1...10_000) { $0.detection.isolationForest = forest($0.detection) { $0.retrainEveryWindows = $1 }($1) }),
        ("detection.isolation_min_training", integer(2...10_000) { $0.detection.isolationForest = forest($0.detection) { $0.minTrainingWindows = $1 }($1) }),
        ("detection.isolation_threshold", positive { $0.detection.isolationForest = forest($0.detection) { $0.threshold = $1 }($1) }),
        ("detection.pattern_move_z", positive { $0.detection.patterns = patterns($0.detection) { $0.moveZ = $1 }($1) }),
        ("detection.pattern_reversion_fraction", positive { $0.detection.patterns = patterns($0.detection) { $0.reversionFraction = $1 }($1) }),
        ("detection.pattern_dump_fraction", positive { $0.detection.patterns = patterns($0.detection) { $0.dumpFraction = $1 }($1) }),
        ("detection.pattern_burst_volatility_ratio", positive { $0.detection.patterns = patterns($0.detection) { $0.burstVolatilityRatio = $1 }($1) }),
        ("detection.pattern_gap_expected_trades", positive { $0.detection.patterns = patterns($0.detection) { $0.gapExpectedTrades = $1 }($1) }),
        ("detection.pattern_gap_min", duration { $0.detection.patterns = patterns($0.detection) { $0.gapMinMs = $1 }($1) }),
        ("detection.max_symbols_per_partition", integer(1...1_000_000) { $0.detection.inputLimits = limits($0.detection) { $0.maxSymbolsPerPartition = $1 }($1) }),
        ("detection.min_trade_time", timestamp { $0.detection.inputLimits = limits($0.detection) { $0.minTradeTimeMs = $1 }($1) }),
        ("detection.max_trade_time", timestamp { $0.detection.inputLimits = limits($0.detection) { $0.maxTradeTimeMs = $1 }($1) }),
        ("detection.max_price", positive { $0.detection.inputLimits = limits($0.detection) { $0.maxPrice = $1 }($1) }),
        ("detection.max_quantity", positive { $0.detection.inputLimits = limits($0.detection) { $0.maxQuantity = $1 }($1) }),
        ("detection.reject_duplicate_trade_ids", boolean { $0.detection.inputLimits = limits($0.detection) { $0.rejectDuplicateTradeIDs = $1 }($1) }),
        ("retention.windows", duration { $0.retentionWindowsMs = $1 }),
        ("retention.anomalies", duration { $0.retentionAnomaliesMs = $1 }),
        ("alerts.webhook_url", string { $0.alertWebhookURL = $1 }),
        ("alerts.min_severity", oneOf(Severity.allCases.map(\.rawValue)) { $0.alertMinSeverity = Severity(rawValue: $1) ?? .high }),
        ("alerts.dashboard_url", string { $0.alertDashboardURL = $1 }),
        ("security.tls_certificate", string { $0.security.tlsCertificate = $1 }),
        ("security.tls_key", string { $0.security.tlsKey = $1 }),
        ("security.tls_ca", string { $0.security.tlsCA = $1 }),
        ("security.require_client_certificate", boolean { $0.security.requireClientCertificate = $1 }),
        ("security.cluster_token_file", string { $0.security.clusterTokenFile = $1 }),
        ("security.operator_token_file", string { $0.security.operatorTokenFile = $1 }),
        ("security.protect_reads", boolean { $0.security.protectReads = $1 }),
    ]

    /// `config`'s effective settings with one field changed: an optional group of detection
    /// settings starts from its defaults the first time one of its keys is set.
    private static func cuts(_ config: DetectionConfig, _ change: @escaping (inout DetectionConfig.SeverityCuts, Double) -> Void) -> (Double) -> DetectionConfig.SeverityCuts {
        { value in
            var settings = config.effectiveSeverityCuts
            change(&settings, value)
            return settings
        }
    }

    private static func limits<T>(_ config: DetectionConfig, _ change: @escaping (inout DetectionConfig.InputLimits, T) -> Void) -> (T) -> DetectionConfig.InputLimits {
        { value in
            var limits = config.inputLimits ?? DetectionConfig.InputLimits()
            change(&limits, value)
            return limits
        }
    }

    private static func forest<T>(_ config: DetectionConfig, _ change: @escaping (inout DetectionConfig.IsolationForestSettings, T) -> Void) -> (T) -> DetectionConfig.IsolationForestSettings {
        { value in
            var settings = config.effectiveIsolationForest
            change(&settings, value)
            return settings
        }
    }

    private static func patterns<T>(_ config: DetectionConfig, _ change: @escaping (inout DetectionConfig.PatternSettings, T) -> Void) -> (T) -> DetectionConfig.PatternSettings {
        { value in
            var settings = config.effectivePatterns
            change(&settings, value)
            return settings
        }
    }

    /// Keys of `[detection.symbols.SYMBOL]` tables.
    static let symbolKeys: [(key: String, setter: @Sendable (inout DetectionConfig.SymbolOverrides, RawValue) throws(ConfigProblem) -> Void)] = [
        ("z_score_threshold", { o, v throws(ConfigProblem) in o.zScoreThreshold = try positiveValue(v) }),
        ("volume_spike_ratio", { o, v throws(ConfigProblem) in o.volumeSpikeRatio = try positiveValue(v) }),
        ("policy", { o, v throws(ConfigProblem) in o.policy = try policyValue(v) }),
        ("cooldown", { o, v throws(ConfigProblem) in o.cooldownMs = try durationValue(v) }),
    ]

    /// Loads `path` (when given and present), then applies `environment`. A missing file is an error
    /// only when `required`.
    static func load(path: String?, required: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ClusterConfig {
        var config = ClusterConfig()
        if let path {
            if FileManager.default.fileExists(atPath: path) {
                let data: Data
                do {
                    data = try Data(contentsOf: URL(fileURLWithPath: path))
                } catch {
                    throw ConfigError(source: path, key: "(file)", message: "cannot read: \(error.localizedDescription)")
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw ConfigError(source: path, key: "(file)", message: "is not UTF-8 text; save cluster.conf as UTF-8")
                }
                try apply(toml: text, source: path, to: &config)
            } else if required {
                throw ConfigError(source: path, key: "(file)", message: "no such file; pass --config with the path of a cluster.conf")
            }
        }
        try apply(environment: environment, to: &config)
        try validate(config, source: path ?? "configuration")
        return config
    }

    static func apply(toml text: String, source: String, to config: inout ClusterConfig) throws {
        if let problem = TOMLSubset.problem(in: text) {
            throw ConfigError(source: source, key: "(syntax)", message: problem)
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(source: source, key: "(syntax)", message: "\(error.description) at line \(error.source.begin.line), column \(error.source.begin.column)")
        }
        for (section, value) in table {
            guard let sectionTable = value.table else {
                throw ConfigError(source: source, key: section, message: "expected a table like [\(section)], found \(describe(value))")
            }
            for (name, value) in sectionTable {
                let key = "\(section).\(name)"
                if key == "kafka.properties" {
                    guard let properties = value.table else {
                        throw ConfigError(source: source, key: key, message: "expected a table of librdkafka properties")
                    }
                    for (property, propertyValue) in properties {
                        config.kafka.properties[property] = try propertyString(propertyValue, source: source, key: "\(key).\(property)")
                    }
                    continue
                }
                if key == "detection.symbols" {
                    guard let symbols = value.table else {
                        throw ConfigError(source: source, key: key, message: "expected tables like [detection.symbols.BTCUSDT]")
                    }
                    for (symbol, overridesValue) in symbols {
                        guard let overrides = overridesValue.table else {
                            throw ConfigError(source: source, key: "\(key).\(symbol)", message: "expected a table like [detection.symbols.\(symbol)]")
                        }
                        var parsed = config.detection.symbols[symbol.uppercased()] ?? .init()
                        for (field, fieldValue) in overrides {
                            let fieldKey = "\(key).\(symbol).\(field)"
                            guard let setter = symbolKeys.first(where: { $0.key == field })?.setter else {
                                throw ConfigError(source: source, key: fieldKey, message: "unknown key; expected one of \(symbolKeys.map(\.key).joined(separator: ", "))")
                            }
                            let value = try raw(fieldValue, source: source, key: fieldKey)
                            do throws(ConfigProblem) {
                                try setter(&parsed, value)
                            } catch {
                                throw ConfigError(source: source, key: fieldKey, message: error.message)
                            }
                        }
                        config.detection.symbols[symbol.uppercased()] = parsed
                    }
                    continue
                }
                guard let setter = keys.first(where: { $0.key == key })?.setter else {
                    throw ConfigError(source: source, key: key, message: "unknown key; expected one of \(knownKeys(in: section))")
                }
                let rawValue = try raw(value, source: source, key: key)
                do throws(ConfigProblem) {
                    try setter(&config, rawValue)
                } catch {
                    throw ConfigError(source: source, key: key, message: error.message)
                }
            }
        }
    }

    /// `VIGIL_SECTION_KEY` for every schema key; `VIGIL_KAFKA_<PROPERTY>` for librdkafka properties.
    static func apply(environment: [String: String], to config: inout ClusterConfig) throws {
        for (key, setter) in keys {
            let name = environmentName(for: key)
            guard let text = environment[name] else { continue }
            do throws(ConfigProblem) {
                try setter(&config, guessRaw(text))
            } catch {
                throw ConfigError(source: "environment", key: name, message: error.message)
            }
        }
        let schemaNames = Set(keys.map { environmentName(for: $0.key) })
        for (name, value) in environment where name.hasPrefix("VIGIL_KAFKA_") && !schemaNames.contains(name) {
            let property = name.dropFirst("VIGIL_KAFKA_".count).lowercased().replacingOccurrences(of: "_", with: ".")
            config.kafka.properties[property] = value
        }
    }

    static func environmentName(for key: String) -> String {
        "VIGIL_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    static func validate(_ config: ClusterConfig, source: String) throws {
        let d = config.detection
        if d.slideMs <= 0 || d.windowMs % d.slideMs != 0 {
            throw ConfigError(source: source, key: "detection.slide", message: "must divide detection.window (\(d.windowMs) ms) exactly; got \(d.slideMs) ms")
        }
        if d.minHistory > d.baselineWindows {
            throw ConfigError(source: source, key: "detection.min_history", message: "must not exceed detection.baseline_windows (\(d.baselineWindows)); got \(d.minHistory)")
        }
        if let problem = d.validationProblems().first {
            // Name the cluster.conf key, not the Swift field.
            let renames: [(String, String)] = [
                ("isolationForest.trees", "isolation_trees"), ("isolationForest.sampleSize", "isolation_sample_size"),
                ("isolationForest.historyWindows", "isolation_history"), ("isolationForest.retrainEveryWindows", "isolation_retrain_every"),
                ("isolationForest.minTrainingWindows", "isolation_min_training"), ("isolationForest.threshold", "isolation_threshold"),
                ("patterns.moveZ", "pattern_move_z"), ("patterns.reversionFraction", "pattern_reversion_fraction"),
                ("patterns.dumpFraction", "pattern_dump_fraction"), ("patterns.burstVolatilityRatio", "pattern_burst_volatility_ratio"),
                ("patterns.gapExpectedTrades", "pattern_gap_expected_trades"), ("patterns.gapMinMs", "pattern_gap_min"),
                ("historyWindows", "isolation_history"), ("qualityMediumMagnitude", "quality_medium_magnitude"),
                ("severityCuts", "severity_medium/high/critical"), ("volumeSpikeMinTrades", "volume_spike_min_trades"),
            ]
            var message = problem
            for (field, key) in renames { message = message.replacingOccurrences(of: field, with: key) }
            throw ConfigError(source: source, key: "detection", message: message)
        }
        if config.leaseTimeoutMs <= config.heartbeatIntervalMs {
            throw ConfigError(source: source, key: "coordinator.lease_timeout", message: "must be longer than coordinator.heartbeat_interval (\(config.heartbeatIntervalMs) ms); got \(config.leaseTimeoutMs) ms")
        }
        for (key, url) in [("alerts.webhook_url", config.alertWebhookURL), ("alerts.dashboard_url", config.alertDashboardURL)]
        where !url.isEmpty && !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            // Not echoed: a webhook URL is a credential.
            throw ConfigError(source: source, key: key, message: "expected an http:// or https:// URL (the value is not shown: it may hold a secret)")
        }
        for (key, ms) in [("retention.windows", config.retentionWindowsMs), ("retention.anomalies", config.retentionAnomaliesMs)] where ms <= 0 {
            throw ConfigError(source: source, key: key, message: "must be longer than 0 (data would be deleted as soon as it is stored); got \(ms) ms")
        }
        if config.kafka.brokers.isEmpty {
            throw ConfigError(source: source, key: "kafka.brokers", message: "expected host:port[,host:port...], found an empty string")
        }
        do throws(SecurityConfigError) {
            try config.security.validate()
        } catch {
            throw ConfigError(source: source, key: error.source, message: error.problem)
        }
    }

    // MARK: - Value parsing

    private static func knownKeys(in section: String) -> String {
        let names = keys.filter { $0.key.hasPrefix(section + ".") }.map { String($0.key.dropFirst(section.count + 1)) }
        if names.isEmpty {
            let sections = Set(keys.map { String($0.key.split(separator: ".")[0]) })
            return "no keys: unknown section; sections are \(sections.sorted().joined(separator: ", "))"
        }
        var all = names
        if section == "kafka" { all.append("properties") }
        if section == "detection" { all.append("symbols") }
        return all.joined(separator: ", ")
    }

    private static func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a number"
        case .bool: "a boolean"
        case .table: "a table"
        case .array: "an array"
        default: "a \(value.type)"
        }
    }

    private static func raw(_ value: TOMLValueConvertible, source: String, key: String) throws -> RawValue {
        if let s = value.string { return .string(s) }
        if let i = value.int { return .int(i) }
        if let d = value.double { return .double(d) }
        if let b = value.bool { return .bool(b) }
        throw ConfigError(source: source, key: key, message: "expected a string, number or boolean, found \(describe(value))")
    }

    private static func propertyString(_ value: TOMLValueConvertible, source: String, key: String) throws -> String {
        switch try raw(value, source: source, key: key) {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): b ? "true" : "false"
        }
    }

    /// Environment values are untyped text: read them as the schema wants.
    private static func guessRaw(_ text: String) -> RawValue {
        if let i = Int(text) { return .int(i) }
        if let d = Double(text) { return .double(d) }
        if text == "true" || text == "false" { return .bool(text == "true") }
        return .string(text)
    }

    private static func string(_ set: @escaping @Sendable (inout ClusterConfig, String) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in
            guard case .string(let s) = value else { throw ConfigProblem(message: "expected a string, found \(value.typeName)") }
            set(&config, s)
        }
    }

    private static func timestamp(_ set: @escaping @Sendable (inout ClusterConfig, Int64) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in set(&config, try timestampValue(value)) }
    }

    /// Milliseconds since the Unix epoch, from an integer or a UTC date "YYYY-MM-DD".
    static func timestampValue(_ value: RawValue) throws(ConfigProblem) -> Int64 {
        switch value {
        case .int(let i) where i >= 0:
            return Int64(i)
        case .string(let s):
            let parts = s.split(separator: "-", omittingEmptySubsequences: false)
            if parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
               let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]), (1...12).contains(m), (1...31).contains(d) {
                // Days from civil (H. Hinnant's algorithm), proleptic Gregorian, UTC.
                let yy = m <= 2 ? y - 1 : y
                let era = (yy >= 0 ? yy : yy - 399) / 400
                let yoe = yy - era * 400
                let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
                let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
                return (era * 146_097 + doe - 719_468) * 86_400_000
            }
            throw ConfigProblem(message: "expected a date like \"2100-01-01\" (UTC) or milliseconds since 1970, found \"\(s)\"")
        default:
            throw ConfigProblem(message: "expected a date like \"2100-01-01\" (UTC) or non-negative milliseconds since 1970, found \(value)")
        }
    }

    private static func boolean(_ set: @escaping @Sendable (inout ClusterConfig, Bool) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in
            guard case .bool(let b) = value else { throw ConfigProblem(message: "expected true or false, found \(value.typeName)") }
            set(&config, b)
        }
    }

    private static func oneOf(_ allowed: [String], _ set: @escaping @Sendable (inout ClusterConfig, String) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in
            guard case .string(let s) = value, allowed.contains(s) else {
                throw ConfigProblem(message: "expected one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")), found \(value)")
            }
            set(&config, s)
        }
    }

    private static func integer(_ range: ClosedRange<Int>, _ set: @escaping @Sendable (inout ClusterConfig, Int) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in
            guard case .int(let i) = value else { throw ConfigProblem(message: "expected an integer, found \(value.typeName)") }
            guard range.contains(i) else { throw ConfigProblem(message: "expected an integer in \(range.lowerBound)...\(range.upperBound), found \(i)") }
            set(&config, i)
        }
    }

    private static func positive(_ set: @escaping @Sendable (inout ClusterConfig, Double) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in set(&config, try positiveValue(value)) }
    }

    private static func duration(_ set: @escaping @Sendable (inout ClusterConfig, Int64) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in set(&config, try durationValue(value)) }
    }

    private static func policy(_ set: @escaping @Sendable (inout ClusterConfig, DetectionConfig.Policy) -> Void) -> Setter {
        { config, value throws(ConfigProblem) in set(&config, try policyValue(value)) }
    }

    static func positiveValue(_ value: RawValue) throws(ConfigProblem) -> Double {
        let number: Double
        switch value {
        case .int(let i): number = Double(i)
        case .double(let d): number = d
        default: throw ConfigProblem(message: "expected a positive number, found \(value.typeName)")
        }
        guard number > 0, number.isFinite else { throw ConfigProblem(message: "expected a positive number, found \(number)") }
        return number
    }

    static func policyValue(_ value: RawValue) throws(ConfigProblem) -> DetectionConfig.Policy {
        guard case .string(let s) = value, let policy = DetectionConfig.Policy(rawValue: s) else {
            throw ConfigProblem(message: "expected one of \(DetectionConfig.Policy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), found \(value)")
        }
        return policy
    }

    /// Milliseconds from an integer, or from a string with a unit: "250ms", "6s", "2m", "1h", "30d".
    static func durationValue(_ value: RawValue) throws(ConfigProblem) -> Int64 {
        switch value {
        case .int(let i) where i >= 0:
            return Int64(i)
        case .string(let s):
            if let ms = parseDuration(s) { return ms }
            throw ConfigProblem(message: "expected a duration like \"500ms\", \"6s\", \"2m\", \"1h\", \"30d\" or milliseconds, found \"\(s)\"")
        default:
            throw ConfigProblem(message: "expected a duration like \"6s\" or a non-negative number of milliseconds, found \(value)")
        }
    }

    static func parseDuration(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let plain = Int64(trimmed), plain >= 0 { return plain }
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            if let n = Int64(number), n >= 0, n <= Int64.max / factor { return n * factor }
            if let d = Double(number), d >= 0, d.isFinite, d * Double(factor) < 9e18 { return Int64(d * Double(factor)) }
        }
        return nil
    }
}

/// The part of TOML cluster.conf uses, checked line by line before TOMLKit parses the file:
/// `[section]` headers, `key = value` lines whose value is a one-line string, a number or a
/// boolean, blank lines and `#` comments. Anything else (arrays, inline tables, multi-line
/// strings, dates, stray characters) is refused with the line and column.
///
/// Why: the TOML parser under TOMLKit (toml++) aborts the process on internal assertions for
/// some malformed input instead of reporting an error, in debug and release builds alike
/// (`make fuzz` found `[# x]`, `[a.]` and `x=[[[` followed by `}`). Within this subset it only
/// ever sees well-formed lines, and reports duplicate keys and the like as errors.
enum TOMLSubset {
    static let hint = "cluster.conf takes [section] headers, key = value lines (a string, number or boolean) and # comments"

    /// "line 3, column 2: expected a key (...)", or nil when every line is in the subset.
    static func problem(in text: String) -> String? {
        var lines = Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        if let first = lines.first, first.starts(with: [0xEF, 0xBB, 0xBF]) { lines[0] = Array(first.dropFirst(3)) }  // byte-order mark
        for (index, line) in lines.enumerated() {
            var scanner = LineScanner(bytes: line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : line)
            if let (column, expected) = scanner.check() {
                return "line \(index + 1), column \(column + 1): expected \(expected); \(hint)"
            }
        }
        return nil
    }

    private struct LineScanner {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpaces() {
            while let c = current, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { i += 1 }
        }

        /// (column, what was expected) at the first problem, or nil.
        mutating func check() -> (Int, String)? {
            skipSpaces()
            guard let c = current else { return nil }
            if c == UInt8(ascii: "#") { return comment() }
            if c == UInt8(ascii: "[") {
                i += 1
                if current == UInt8(ascii: "[") { return (i, "a [section] header (arrays of tables are not used)") }
                skipSpaces()
                if let problem = key() { return problem }
                skipSpaces()
                guard current == UInt8(ascii: "]") else { return (i, "] after the section name") }
                i += 1
            } else {
                if let problem = key() { return problem }
                skipSpaces()
                guard current == UInt8(ascii: "=") else { return (i, "= after the key") }
                i += 1
                skipSpaces()
                if let problem = value() { return problem }
            }
            skipSpaces()
            guard let end = current else { return nil }
            return end == UInt8(ascii: "#") ? comment() : (i, "the end of the line or a # comment")
        }

        mutating func comment() -> (Int, String)? {
            while let c = current {
                if c < 0x20 && c != UInt8(ascii: "\t") || c == 0x7F { return (i, "no control characters in a comment") }
                i += 1
            }
            return nil
        }

        mutating func key() -> (Int, String)? {
            while true {
                guard let c = current else { return (i, "a key (A-Z a-z 0-9 _ - or a quoted key)") }
                if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                    if let problem = string() { return problem }
                } else if Self.isBare(c) {
                    while let c = current, Self.isBare(c) { i += 1 }
                } else {
                    return (i, "a key (A-Z a-z 0-9 _ - or a quoted key)")
                }
                skipSpaces()
                guard current == UInt8(ascii: ".") else { return nil }
                i += 1
                skipSpaces()
            }
        }

        mutating func value() -> (Int, String)? {
            guard let c = current else { return (i, "a value") }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") { return string() }
            let start = i
            while let c = current, Self.isBare(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") { i += 1 }
            let word = String(decoding: bytes[start..<i], as: UTF8.self)
            if word == "true" || word == "false" || Self.isNumber(word) { return nil }
            return (start, "a string in quotes, a number or true/false (arrays, inline tables and dates are not used)")
        }

        /// A one-line basic ("...", with escapes) or literal ('...') string.
        mutating func string() -> (Int, String)? {
            let quote = bytes[i]
            let start = i
            i += 1
            if current == quote, i + 1 < bytes.count, bytes[i + 1] == quote { return (start, "a one-line string (multi-line strings are not used)") }
            while let c = current {
                if c == quote {
                    i += 1
                    return nil
                }
                if c < 0x20 && c != UInt8(ascii: "\t") || c == 0x7F { return (i, "no control characters in a string") }
                if c == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") {
                    i += 1
                    guard let e = current else { break }
                    switch e {
                    case UInt8(ascii: "b"), UInt8(ascii: "t"), UInt8(ascii: "n"), UInt8(ascii: "f"), UInt8(ascii: "r"), UInt8(ascii: "\""), UInt8(ascii: "\\"):
                        i += 1
                    case UInt8(ascii: "u"), UInt8(ascii: "U"):
                        let digits = e == UInt8(ascii: "u") ? 4 : 8
                        i += 1
                        for _ in 0..<digits {
                            guard let h = current, h.isHexDigit else { return (i, "a \\u escape with \(digits) hex digits") }
                            i += 1
                        }
                    default:
                        return (i, "an escape: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX or \\UXXXXXXXX")
                    }
                    continue
                }
                i += 1
            }
            return (start, "a closing \(quote == UInt8(ascii: "\"") ? "\"" : "'") on the same line")
        }

        static func isBare(_ c: UInt8) -> Bool {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }

        /// TOML integers and floats: decimal with `_` between digits, fraction and exponent;
        /// `0x`/`0o`/`0b` integers; `inf` and `nan` with an optional sign.
        static func isNumber(_ word: String) -> Bool {
            var text = Substring(word)
            if text.hasPrefix("0x") || text.hasPrefix("0o") || text.hasPrefix("0b") {
                let digits = text.dropFirst(2)
                let allowed: (Character) -> Bool = text.hasPrefix("0x") ? { $0.isHexDigit } : text.hasPrefix("0o") ? { ("0"..."7").contains($0) } : { $0 == "0" || $0 == "1" }
                return groups(digits, allowed)
            }
            if text.first == "+" || text.first == "-" { text = text.dropFirst() }
            if text == "inf" || text == "nan" { return true }
            var mantissa = text
            var exponent: Substring?
            if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
                mantissa = text[..<e]
                var rest = text[text.index(after: e)...]
                if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
                exponent = rest
            }
            let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard groups(parts[0], { $0.isASCII && $0.isNumber }) else { return false }
            if parts.count == 2 && !groups(parts[1], { $0.isASCII && $0.isNumber }) { return false }
            if let exponent, !groups(exponent, { $0.isASCII && $0.isNumber }) { return false }
            return true
        }

        /// Non-empty digits, with single `_` only between digits.
        private static func groups(_ text: Substring, _ isDigit: (Character) -> Bool) -> Bool {
            guard let first = text.first, let last = text.last, isDigit(first), isDigit(last) else { return false }
            var previousUnderscore = false
            for c in text {
                if c == "_" {
                    if previousUnderscore { return false }
                    previousUnderscore = true
                } else if isDigit(c) {
                    previousUnderscore = false
                } else {
                    return false
                }
            }
            return true
        }
    }
}

private extension UInt8 {
    var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
