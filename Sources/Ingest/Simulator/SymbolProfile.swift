/// How one simulated symbol trades: its price level, precision, volatility, activity and sizes.
///
/// Prices are quoted in ticks of `10^-priceDecimals` and quantities in steps of
/// `10^-quantityDecimals`, as Binance does for its spot pairs; the simulator rounds to them and
/// writes exactly that many decimals (`"61837.63"`, `"0.02000"`).
public struct SymbolProfile: Sendable, Equatable, Codable {
    /// Upper-case ASCII letters and digits, e.g. `"BTCUSDT"`; also the Kafka key of its trades.
    public var symbol: String
    /// Price at the start of the simulation (quote currency).
    public var basePrice: Double
    /// Decimals of the tick size: 2 means a tick of 0.01.
    public var priceDecimals: Int
    /// Decimals of the quantity step: 5 means a step of 0.00001.
    public var quantityDecimals: Int
    /// Annualized volatility of the price's geometric Brownian motion (0.55 = 55 %/year; markets trade 24/7).
    public var annualVolatility: Double
    /// Relative activity: the symbol's share of the overall trade rate is `activity / sum(activity)`.
    public var activity: Double
    /// Median trade size (base currency); sizes are log-normal around it.
    public var medianQuantity: Double
    /// Standard deviation of the log of trade sizes (1.3 gives a realistic long tail of large trades).
    public var quantitySigma: Double

    public init(
        symbol: String, basePrice: Double, priceDecimals: Int, quantityDecimals: Int,
        annualVolatility: Double, activity: Double, medianQuantity: Double, quantitySigma: Double = 1.3
    ) {
        self.symbol = symbol
        self.basePrice = basePrice
        self.priceDecimals = priceDecimals
        self.quantityDecimals = quantityDecimals
        self.annualVolatility = annualVolatility
        self.activity = activity
        self.medianQuantity = medianQuantity
        self.quantitySigma = quantitySigma
    }

    /// Five liquid Binance spot pairs at mid-2024 levels, with their real tick and step sizes and
    /// roughly their relative activity; trade sizes have a median of about 100-150 USDT.
    public static let defaults: [SymbolProfile] = [
        SymbolProfile(symbol: "BTCUSDT", basePrice: 61_837.63, priceDecimals: 2, quantityDecimals: 5,
                      annualVolatility: 0.55, activity: 0.36, medianQuantity: 0.0025),
        SymbolProfile(symbol: "ETHUSDT", basePrice: 2_683.80, priceDecimals: 2, quantityDecimals: 4,
                      annualVolatility: 0.65, activity: 0.26, medianQuantity: 0.04),
        SymbolProfile(symbol: "SOLUSDT", basePrice: 155.42, priceDecimals: 2, quantityDecimals: 3,
                      annualVolatility: 0.85, activity: 0.16, medianQuantity: 0.8),
        SymbolProfile(symbol: "BNBUSDT", basePrice: 521.3, priceDecimals: 1, quantityDecimals: 3,
                      annualVolatility: 0.55, activity: 0.10, medianQuantity: 0.2),
        SymbolProfile(symbol: "XRPUSDT", basePrice: 0.5703, priceDecimals: 4, quantityDecimals: 1,
                      annualVolatility: 0.75, activity: 0.12, medianQuantity: 180),
    ]
}
