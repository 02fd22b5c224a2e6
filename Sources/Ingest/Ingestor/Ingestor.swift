import Detection
import Logging

/// Moves trades from a source (the simulator or a file replay) into a sink (a Kafka topic,
/// keyed by symbol), paced, and reports what happened.
///
/// The thin shell around the pure sources: the only place in Ingest that reads a clock, and the
/// clock is injected so that tests can run paced replays without waiting (production uses
/// `ContinuousClock`).
///
/// - Pacing: see `Pacing`. Before every wait it polls the sink, so delivery reports keep flowing.
/// - Labels: each label the source reports (simulator anomalies) is passed to `onLabel` as the
///   stream reaches its start, and collected in the report.
/// - End: the sink is always finished (flushed, up to `flushTimeoutMs`), also after cancellation
///   or an error.
/// - Cancellation: checked before every record in paced runs (a wait is cut short) and every
///   1024 records at full speed; the run then stops, flushes, and returns with `cancelled` set.
/// - Errors: a record the sink refuses, or a source that fails to read, stops the run; what was
///   already sent is flushed, then the error is thrown (a refused record's error names its line
///   and how many records went before it).
public struct Ingestor<C: Clock>: Sendable where C.Duration == Duration {
    public var pacing: Pacing
    public var clock: C
    /// How long the final flush waits for outstanding deliveries.
    public var flushTimeoutMs: Int32 = 30_000
    public var logger: Logger

    public init(pacing: Pacing, clock: C, logger: Logger) {
        self.pacing = pacing
        self.clock = clock
        self.logger = logger
    }

    /// Sends every record of `source` to `sink`, then finishes the sink.
    /// - Parameter onLabel: receives each anomaly label when the stream reaches its start; it
    ///   may throw to stop the run (e.g. the labels file cannot be written).
    /// - Throws: `IngestError` `.invalidConfig` for a pacing factor or rate that is not positive
    ///   (before anything is sent); `.produceFailed` if the sink refuses a record, the source's
    ///   read error, or `onLabel`'s error, each after flushing what was sent.
    public func run<Source: TradeSource, Sink: RecordSink>(
        _ source: inout Source, into sink: Sink, onLabel: (AnomalyLabel) throws -> Void = { _ in }
    ) async throws -> IngestReport {
        guard pacing.isValid else {
            throw IngestError(.invalidConfig, "pacing \(pacing): the speed factor or rate must be a positive number")
        }
        var report = IngestReport()
        var perSymbol: [Int] = []
        var record = IngestRecord()
        var reportedMalformed = 0
        let started = clock.now
        var pacer = Pacer(pacing: pacing, clock: clock)
        logger.info("ingest starting", metadata: ["pacing": "\(pacing)"])

        func finish() {
            let delivery = sink.finish(timeoutMs: flushTimeoutMs)
            report.delivered = delivery.delivered
            report.failed = delivery.failed
            report.pending = delivery.pending
            report.deliveryError = delivery.error
            report.malformed = source.malformedCount
            report.malformedSamples = source.malformedSamples
            for (index, count) in perSymbol.enumerated() where count > 0 { report.perSymbol[source.symbols[index]] = count }
            report.elapsed = started.duration(to: clock.now)
        }

        do {
            while try source.next(into: &record) {
                if source.malformedCount != reportedMalformed {
                    logMalformed(source.malformedSamples.dropFirst(reportedMalformed).prefix(source.malformedCount - reportedMalformed))
                    reportedMalformed = source.malformedCount
                }
                for label in source.takeLabels(startedBy: record.timeMs) {
                    try onLabel(label)
                    report.labels.append(label)
                }
                if report.produced & 1023 == 0, Task.isCancelled { throw CancellationError() }
                if await !pacer.release(record.timeMs, beforeWaiting: sink.poll) { throw CancellationError() }

                do {
                    try record.line.withUnsafeBytes { line in
                        try sink.send(key: UnsafeRawBufferPointer(rebasing: line[record.keyRange]), value: line)
                    }
                } catch {
                    throw IngestError(.produceFailed, """
                        record at line \(record.lineNumber) (\(source.symbols[record.symbolIndex]), T=\(record.timeMs)) \
                        was refused after \(report.produced) were produced: \(error)
                        """)
                }
                report.produced += 1
                if record.symbolIndex >= perSymbol.count {
                    perSymbol.append(contentsOf: repeatElement(0, count: record.symbolIndex + 1 - perSymbol.count))
                }
                perSymbol[record.symbolIndex] += 1
                if report.firstTimeMs == nil { report.firstTimeMs = record.timeMs }
                report.lastTimeMs = record.timeMs
                if report.produced & 4095 == 0 {
                    sink.poll()
                    await Task.yield()  // share the cooperative pool during a full-speed run
                }
            }
            if !Task.isCancelled {
                for label in source.takeLabels(startedBy: .max) {
                    try onLabel(label)
                    report.labels.append(label)
                }
            }
        } catch is CancellationError {
            report.cancelled = true
        } catch {
            finish()
            logger.info("ingest stopped by an error", metadata: ["error": "\(error)", "produced": "\(report.produced)"])
            throw error
        }
        if Task.isCancelled { report.cancelled = true }
        finish()
        logger.info("ingest finished", metadata: [
            "produced": "\(report.produced)", "delivered": "\(report.delivered)", "failed": "\(report.failed)",
            "pending": "\(report.pending)", "malformed": "\(report.malformed)", "cancelled": "\(report.cancelled)",
        ])
        return report
    }

    private func logMalformed(_ lines: ArraySlice<MalformedLine>) {
        for line in lines {
            logger.info("skipping malformed input line", metadata: [
                "line": "\(line.lineNumber)", "reason": "\(line.reason)", "excerpt": "\(line.excerpt)",
            ])
        }
    }
}

extension Ingestor where C == ContinuousClock {
    /// An ingestor on the wall clock.
    public init(pacing: Pacing, logger: Logger) {
        self.init(pacing: pacing, clock: ContinuousClock(), logger: logger)
    }
}
