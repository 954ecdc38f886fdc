/// Stripe-style object ids: a prefix and random alphanumerics (`pi_`, `re_`, `tr_`, `ch_`, `dp_`, `evt_`, `req_`).
enum StripeIdentifier {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    /// `prefix` followed by `length` random alphanumerics from the system's secure generator.
    static func make(_ prefix: String, length: Int = 24) -> String {
        var generator = SystemRandomNumberGenerator()
        var id = prefix
        for _ in 0..<length {
            id.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)])
        }
        return id
    }
}
