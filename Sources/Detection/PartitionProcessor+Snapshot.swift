/// Binary snapshots of a `PartitionProcessor`.
///
/// Layout (little-endian): magic `VGLP`, format version (UInt16), partition, the window
/// settings the state depends on (window, slide, lateness, baseline windows), the counters,
/// the watermark state, then each symbol in id order (name, next window, last data pane,
/// carried close, live panes in pane order, baseline windows oldest first, cooldowns by kind,
/// the Isolation Forest's history and schedule, the pattern memory, the last trade id applied
/// (`Int64.min` for none; format 3)), and last an FNV-1a 64 checksum of everything before it.
///
/// Thresholds, policy, cooldowns and severity cuts are not part of the state: a snapshot
/// restores under a configuration that changes them (they apply from the next window on).
/// Nor are the forests: each is rebuilt on restore from the history it was trained on, with the
/// seed of its generation, so it scores exactly as before (restoring under other `trees` or
/// `sampleSize` rebuilds it with those). The window settings and the size of the forest's
/// history are state: restoring under different ones is a `configMismatch`.
///
/// Format 1 (before rush orders, forests and pattern rules) is not read: such a checkpoint is
/// refused with `unsupportedVersion`, and the partition is replayed from its start offset.
/// Format 2 (before last trade ids) is read, with no last trade id: duplicate checks start over.
extension PartitionProcessor {
    static let snapshotMagic: [UInt8] = Array("VGLP".utf8)
    static let snapshotVersion: UInt16 = 3

    /// Binary snapshot of the whole state (windows, baselines, cooldowns, watermark, stats,
    /// next offset): compact, versioned (magic + version header), checksummed.
    public func snapshot() -> [UInt8] {
        var w = ByteWriter(capacity: 128 + states.count * 2_048)
        w.writeRaw(Self.snapshotMagic)
        w.write(Self.snapshotVersion)
        w.write(partition)
        w.write(geometry.windowMs)
        w.write(geometry.slideMs)
        w.write(geometry.latenessMs)
        w.write(UInt32(geometry.baselineWindows))
        let forest = config.effectiveIsolationForest
        let probe = IsolationModel(settings: forest, symbol: "")
        w.write(UInt32(probe.historyWindows))
        w.write(UInt32(probe.retrainEveryWindows))
        let c = counters
        for value in [c.consumed, c.windowed, c.late, c.malformed, c.windowsClosed, c.windowsSkipped,
                      c.anomalies, c.suppressed, c.watermarkMs, c.nextOffset]
        {
            w.write(value)
        }
        w.write(maxEventTimeMs)
        w.write(closedThrough)
        w.write(UInt32(states.count))
        for id in states.indices {
            let state = states[id]
            w.writeShortBytes(symbols.key(id).bytes)
            w.write(state.nextWindowStart)
            w.write(state.lastDataPane)
            w.write(state.carriedClose)
            let live = state.panes
                .filter { $0.index != .min && $0.index >= state.nextWindowStart && $0.count > 0 }
                .sorted { $0.index < $1.index }
            w.write(UInt16(live.count))
            for pane in live { w.write(pane) }
            let windows = state.baseline.windows
            w.write(UInt16(windows.count))
            for window in windows { w.write(window) }
            let cooldowns = state.cooldowns.lastAlerted.sorted { $0.key < $1.key }
            w.write(UInt8(cooldowns.count))
            for (kind, alert) in cooldowns {
                w.writeShortBytes(Array(kind.rawValue.utf8))
                w.write(alert.endMs)
                w.writeShortBytes(Array(alert.severity.rawValue.utf8))
            }
            let isolation = state.isolation
            w.write(UInt32(isolation.count))
            w.write(UInt32(isolation.windowsSinceTraining))
            w.write(isolation.generation)
            w.write(UInt32(isolation.trainedOn))
            for vector in isolation.history {
                for value in vector { w.write(value.bitPattern) }
            }
            w.write(state.patterns)
            w.write(state.lastTradeID ?? .min)
        }
        var bytes = w.bytes
        var checksum = ByteWriter()
        checksum.write(fnv1a64(bytes, 0..<bytes.count))
        bytes.append(contentsOf: checksum.bytes)
        return bytes
    }

    /// Restores a processor from `snapshot()` bytes. Throws a `SnapshotError` (never traps) on
    /// anything that is not an intact snapshot of this partition under the same window settings.
    public init(partition: Int32, config: DetectionConfig, restoring snapshot: [UInt8]) throws(SnapshotError) {
        self.init(partition: partition, config: config)
        let header = Self.snapshotMagic.count + 2
        guard snapshot.count >= header + 8, Array(snapshot[0..<4]) == Self.snapshotMagic else {
            throw SnapshotError(.notASnapshot, "not a Vigil partition snapshot (\(snapshot.count) bytes, bad magic); discard the checkpoint and replay the partition from its start offset")
        }
        var r = ByteReader(snapshot, from: 4, end: snapshot.count - 8)
        let version: UInt16 = try r.read()
        guard version == Self.snapshotVersion || version == 2 else {
            throw SnapshotError(.unsupportedVersion, "partition snapshot format \(version) is not supported by this build (it reads format \(Self.snapshotVersion)); run the matching Vigil version or discard the checkpoint")
        }
        var tail = ByteReader(snapshot, from: snapshot.count - 8)
        let stored: UInt64 = try tail.read()
        guard stored == fnv1a64(snapshot, 0..<(snapshot.count - 8)) else {
            throw SnapshotError(.checksumMismatch, "partition snapshot checksum mismatch: the checkpoint was damaged in storage or transit; discard it and replay the partition from its start offset")
        }

        let storedPartition: Int32 = try r.read()
        guard storedPartition == partition else {
            throw SnapshotError(.partitionMismatch, "snapshot belongs to partition \(storedPartition), not \(partition); fetch the checkpoint of partition \(partition)")
        }
        let windowMs: Int64 = try r.read()
        let slideMs: Int64 = try r.read()
        let latenessMs: Int64 = try r.read()
        let baselineWindows: UInt32 = try r.read()
        let forestHistory: UInt32 = try r.read()
        let forestRetrain: UInt32 = try r.read()
        let probe = IsolationModel(settings: config.effectiveIsolationForest, symbol: "")
        guard windowMs == geometry.windowMs, slideMs == geometry.slideMs, latenessMs == geometry.latenessMs,
            Int(baselineWindows) == geometry.baselineWindows
        else {
            throw SnapshotError(.configMismatch, "snapshot was taken with window \(windowMs) ms, slide \(slideMs) ms, lateness \(latenessMs) ms, baseline \(baselineWindows) windows, but the configuration has \(geometry.windowMs), \(geometry.slideMs), \(geometry.latenessMs), \(geometry.baselineWindows); restore with the same window settings or discard the checkpoint and replay")
        }
        guard Int(forestHistory) == probe.historyWindows, Int(forestRetrain) == probe.retrainEveryWindows else {
            throw SnapshotError(.configMismatch, "snapshot was taken with an Isolation Forest history of \(forestHistory) windows retrained every \(forestRetrain), but the configuration has \(probe.historyWindows) and \(probe.retrainEveryWindows); restore with the same settings or discard the checkpoint and replay")
        }

        var c = ProcessorStats()
        c.consumed = try r.read()
        c.windowed = try r.read()
        c.late = try r.read()
        c.malformed = try r.read()
        c.windowsClosed = try r.read()
        c.windowsSkipped = try r.read()
        c.anomalies = try r.read()
        c.suppressed = try r.read()
        c.watermarkMs = try r.read()
        c.nextOffset = try r.read()
        guard c.consumed >= 0, c.windowed >= 0, c.late >= 0, c.malformed >= 0,
            c.consumed == c.windowed &+ c.late &+ c.malformed
        else {
            throw SnapshotError.corrupt("counters do not add up")
        }
        counters = c
        maxEventTimeMs = try r.read()
        closedThrough = try r.read()
        // The watermark invariants `process` keeps; they also bound the work the next record
        // can cause, so a damaged snapshot cannot make a processor spin.
        let k = geometry.panesPerWindow
        let maxPane = geometry.pane(of: maxEventTimeMs)
        if maxEventTimeMs == .min {
            guard c.watermarkMs == .min, closedThrough == .min, c.windowed == 0 else {
                throw SnapshotError.corrupt("watermark without trades")
            }
        } else {
            let watermarkPane = geometry.pane(of: c.watermarkMs)
            guard c.watermarkMs == maxEventTimeMs.subtractingSaturated(geometry.latenessMs),
                closedThrough <= watermarkPane - 1, closedThrough >= watermarkPane - k
            else {
                throw SnapshotError.corrupt("watermark \(c.watermarkMs) inconsistent with closed windows")
            }
        }

        let symbolCount = Int(try r.read(UInt32.self))
        guard symbolCount == 0 || maxEventTimeMs != .min else { throw SnapshotError.corrupt("symbols without trades") }
        for id in 0..<symbolCount {
            guard let key = SymbolKey(try r.readShortBytes()) else { throw SnapshotError.corrupt("invalid symbol #\(id)") }
            guard symbols.id(of: key) == nil else { throw SnapshotError.corrupt("symbol \(key) twice") }
            _ = symbols.intern(key)
            var state = SymbolWindows(
                geometry: geometry, config: config, symbol: symbols.name(id), nextWindowStart: try r.read())
            state.lastDataPane = try r.read()
            state.carriedClose = try r.readDouble()
            guard state.nextWindowStart > closedThrough, state.nextWindowStart <= maxPane, state.lastDataPane <= maxPane else {
                throw SnapshotError.corrupt("\(key): window position outside the watermark's range")
            }
            let paneCount = Int(try r.read(UInt16.self))
            guard paneCount <= state.panes.count else { throw SnapshotError.corrupt("\(key): \(paneCount) panes") }
            for _ in 0..<paneCount {
                let pane = try r.readPane()
                let (limit, overflow) = state.nextWindowStart.addingReportingOverflow(Int64(state.panes.count))
                guard pane.index >= state.nextWindowStart, overflow || pane.index < limit, pane.count > 0,
                    pane.index <= state.lastDataPane
                else {
                    throw SnapshotError.corrupt("\(key): pane \(pane.index) outside the open range")
                }
                guard Self.isPossible(pane, slideMs: geometry.slideMs, windowed: c.windowed, nextOffset: c.nextOffset) else {
                    throw SnapshotError.corrupt("\(key): pane \(pane.index) holds values no trade could have produced")
                }
                let slot = state.slot(of: pane.index)
                guard state.panes[slot].index == .min else { throw SnapshotError.corrupt("\(key): pane \(pane.index) twice") }
                state.panes[slot] = pane
            }
            let windowCount = Int(try r.read(UInt16.self))
            guard windowCount <= geometry.baselineWindows else {
                throw SnapshotError.corrupt("\(key): \(windowCount) baseline windows")
            }
            for _ in 0..<windowCount { state.baseline.append(try r.readWindow()) }
            let cooldownCount = Int(try r.read(UInt8.self))
            var cooldowns: [AnomalyKind: Cooldowns.Alert] = [:]
            for _ in 0..<cooldownCount {
                let raw = String(decoding: try r.readShortBytes(), as: UTF8.self)
                guard let kind = AnomalyKind(rawValue: raw), cooldowns[kind] == nil else {
                    throw SnapshotError.corrupt("\(key): bad cooldown kind \"\(raw)\"")
                }
                let endMs: Int64 = try r.read()
                guard endMs <= c.watermarkMs else { throw SnapshotError.corrupt("\(key): cooldown of a window the watermark has not closed") }
                let rawSeverity = String(decoding: try r.readShortBytes(), as: UTF8.self)
                guard let severity = Severity(rawValue: rawSeverity) else {
                    throw SnapshotError.corrupt("\(key): bad cooldown severity \"\(rawSeverity)\"")
                }
                cooldowns[kind] = Cooldowns.Alert(endMs: endMs, severity: severity)
            }
            state.cooldowns = Cooldowns(lastAlerted: cooldowns)
            let vectorCount = Int(try r.read(UInt32.self))
            let sinceTraining = Int(try r.read(UInt32.self))
            let generation: UInt64 = try r.read()
            let trainedOn = Int(try r.read(UInt32.self))
            guard vectorCount <= state.isolation.capacity, r.remaining >= vectorCount * IsolationModel.dimensions * 4 else {
                throw SnapshotError.corrupt("\(key): \(vectorCount) isolation vectors")
            }
            var history: [[Float]] = []
            history.reserveCapacity(vectorCount)
            for _ in 0..<vectorCount {
                var vector: [Float] = []
                for _ in 0..<IsolationModel.dimensions { vector.append(Float(bitPattern: try r.read(UInt32.self))) }
                history.append(vector)
            }
            if let problem = state.isolation.restore(
                history: history, windowsSinceTraining: sinceTraining, generation: generation, trainedOn: trainedOn)
            {
                throw SnapshotError.corrupt("\(key): \(problem)")
            }
            state.patterns = try r.readPatternMemory()
            if version >= 3 {
                let lastTradeID: Int64 = try r.read()
                state.lastTradeID = lastTradeID == .min ? nil : lastTradeID
            }
            states.append(state)
        }
        guard r.remaining == 0 else { throw SnapshotError.corrupt("\(r.remaining) unexpected trailing bytes") }
    }
}

extension ByteWriter {
    mutating func write(_ pane: Pane) {
        write(pane.index)
        write(pane.count)
        write(pane.baseVolume)
        write(pane.quoteVolume)
        write(pane.takerBuyVolume)
        write(pane.open)
        write(pane.high)
        write(pane.low)
        write(pane.close)
        write(pane.firstSequence)
        write(pane.lastSequence)
        write(pane.sumSquaredReturns)
        write(pane.largestTrade)
        write(pane.minTimeMs)
        write(pane.maxTimeMs)
        write(pane.longestGapMs)
        write(pane.rushClusters)
        write(pane.rushVolume)
        write(pane.runTimeMs)
        write(pane.runTakerBuy)
        write(pane.runFills)
        write(pane.runFirstQuantity)
    }

    mutating func write(_ window: WindowFeatures) {
        write(window.count)
        write(window.baseVolume)
        write(window.quoteVolume)
        write(window.vwap)
        write(window.open)
        write(window.high)
        write(window.low)
        write(window.close)
        write(window.logReturn)
        write(window.volatility)
        write(window.takerBuyRatio)
        write(window.largestTrade)
        write(window.longestGapMs)
        write(window.rushClusters)
        write(window.rushVolumeShare)
        write(window.recentQuoteVolume)
    }

    mutating func write(_ memory: PatternMemory) {
        write(memory.moveDirection)
        write(memory.moveReference)
        write(memory.moveExtreme)
        write(memory.moveScale)
        write(memory.moveSeenAtMs)
        write(memory.pumpBase)
        write(memory.pumpPeak)
        write(memory.pumpScale)
        write(memory.pumpLastMs)
    }
}

extension ByteReader {
    mutating func readPane() throws(SnapshotError) -> Pane {
        var pane = Pane(index: try read())
        pane.count = try read()
        pane.baseVolume = try readDouble()
        pane.quoteVolume = try readDouble()
        pane.takerBuyVolume = try readDouble()
        pane.open = try readDouble()
        pane.high = try readDouble()
        pane.low = try readDouble()
        pane.close = try readDouble()
        pane.firstSequence = try read()
        pane.lastSequence = try read()
        pane.sumSquaredReturns = try readDouble()
        pane.largestTrade = try readDouble()
        pane.minTimeMs = try read()
        pane.maxTimeMs = try read()
        pane.longestGapMs = try read()
        pane.rushClusters = try read()
        pane.rushVolume = try readDouble()
        pane.runTimeMs = try read()
        pane.runTakerBuy = try readBool()
        pane.runFills = try read()
        pane.runFirstQuantity = try readDouble()
        return pane
    }

    mutating func readWindow() throws(SnapshotError) -> WindowFeatures {
        WindowFeatures(
            count: try read(), baseVolume: try readDouble(), quoteVolume: try readDouble(),
            vwap: try readDouble(), open: try readDouble(), high: try readDouble(), low: try readDouble(),
            close: try readDouble(), logReturn: try readDouble(), volatility: try readDouble(),
            takerBuyRatio: try readDouble(), largestTrade: try readDouble(), longestGapMs: try read(),
            rushClusters: try read(), rushVolumeShare: try readDouble(), recentQuoteVolume: try readDouble())
    }

    mutating func readPatternMemory() throws(SnapshotError) -> PatternMemory {
        var memory = PatternMemory()
        memory.moveDirection = try read()
        guard (-1...1).contains(memory.moveDirection) else { throw SnapshotError.corrupt("bad pattern move direction") }
        memory.moveReference = try readDouble()
        memory.moveExtreme = try readDouble()
        memory.moveScale = try readDouble()
        memory.moveSeenAtMs = try read()
        memory.pumpBase = try readDouble()
        memory.pumpPeak = try readDouble()
        memory.pumpScale = try readDouble()
        memory.pumpLastMs = try read()
        return memory
    }
}
