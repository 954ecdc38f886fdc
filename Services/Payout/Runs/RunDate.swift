import Foundation

/// A run's date: a calendar day in `PAYOUT_TIME_ZONE`, written `YYYY-MM-DD`.
struct RunDate: Sendable, Hashable, CustomStringConvertible, Comparable {
    let year: Int
    let month: Int
    let day: Int

    /// Why a date cannot be run.
    enum Problem: Error, Equatable, CustomStringConvertible {
        /// Not `YYYY-MM-DD`.
        case malformed
        /// Well-formed but no such day (2026-02-30).
        case impossible
        /// After today in the run's time zone.
        case future(today: RunDate)

        var description: String {
            switch self {
            case .malformed: "run_date must be a date written YYYY-MM-DD"
            case .impossible: "run_date is not a day of the calendar"
            case .future(let today): "run_date is in the future (today is \(today))"
            }
        }
    }

    /// Parses `YYYY-MM-DD` (digits only, a real day of the Gregorian calendar, years 2000-9999).
    init(parsing text: String) throws(Problem) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2])
        else { throw .malformed }
        guard (2000...9999).contains(year), (1...12).contains(month), (1...Self.days(inMonth: month, of: year)).contains(day) else {
            throw .impossible
        }
        self.init(year: year, month: month, day: day)
    }

    private init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The day `instant` falls on in `timeZone`.
    init(containing instant: Date, in timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: instant)
        self.init(year: parts.year ?? 1970, month: parts.month ?? 1, day: parts.day ?? 1)
    }

    /// The day before.
    var previous: RunDate {
        if day > 1 { return RunDate(year: year, month: month, day: day - 1) }
        if month > 1 { return RunDate(year: year, month: month - 1, day: Self.days(inMonth: month - 1, of: year)) }
        return RunDate(year: year - 1, month: 12, day: 31)
    }

    /// The first instant of the next day in `timeZone`: where this day's cut-off is at the latest.
    func end(in timeZone: TimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = calendar.date(from: DateComponents(year: year, month: month, day: day)) ?? .distantPast
        return calendar.date(byAdding: .day, value: 1, to: start) ?? start
    }

    /// Checks the date can be run at `now`: not after today in `timeZone`.
    func checkNotFuture(now: Date, in timeZone: TimeZone) throws(Problem) {
        let today = RunDate(containing: now, in: timeZone)
        guard self <= today else { throw .future(today: today) }
    }

    var description: String {
        String(format: "%04d-%02d-%02d", year, month, day)
    }

    static func < (lhs: RunDate, rhs: RunDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    private static func days(inMonth month: Int, of year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
