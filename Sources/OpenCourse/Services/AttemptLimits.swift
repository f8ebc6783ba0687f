import Foundation

/// The login and registration limits: failed logins per account and per client address lock
/// further logins for the rest of the window whatever the password; registrations are counted
/// per client address.
public struct AttemptLimits: Sendable {
    let store: any AttemptStore
    let window: TimeInterval
    let loginMaxFailures: Int
    let registerMaxPerWindow: Int

    public init(store: any AttemptStore, windowSeconds: Int, loginMaxFailures: Int, registerMaxPerWindow: Int) {
        self.store = store
        self.window = TimeInterval(windowSeconds)
        self.loginMaxFailures = loginMaxFailures
        self.registerMaxPerWindow = registerMaxPerWindow
    }

    /// Throws `rateLimited` when the account or the address has used up its failures; otherwise
    /// returns the account's failure count.
    func checkLogin(email: String, client: String, now: Date = Date()) async throws -> Int {
        var accountFailures = 0
        for key in [Self.accountKey(email), Self.addressKey(client)] {
            let attempts = try await store.count(key, window: window, now: now)
            if attempts.count >= loginMaxFailures {
                throw limited("Too many failed sign-in attempts; try again later.", attempts, now: now, limit: loginMaxFailures)
            }
            if accountFailures == 0 { accountFailures = attempts.count }
        }
        return accountFailures
    }

    func recordLoginFailure(email: String, client: String, now: Date = Date()) async throws {
        _ = try await store.record(Self.accountKey(email), window: window, now: now)
        _ = try await store.record(Self.addressKey(client), window: window, now: now)
    }

    /// A success clears the account's failures (not the address's: one valid account must not
    /// let an address keep guessing others).
    func recordLoginSuccess(email: String) async throws {
        try await store.reset(Self.accountKey(email))
    }

    /// Counts a registration attempt from `client`, throwing when it is over the allowance.
    func admitRegistration(client: String, now: Date = Date()) async throws {
        let attempts = try await store.record("register:addr:\(client)", window: window, now: now)
        if attempts.count > registerMaxPerWindow {
            throw limited("Too many registrations from this address; try again later.", attempts, now: now, limit: registerMaxPerWindow)
        }
    }

    private func limited(_ message: String, _ attempts: AttemptCount, now: Date, limit: Int) -> AppError {
        .rateLimited(message, limit: limit, retryAfter: max(1, Int(attempts.windowEnds.timeIntervalSince(now).rounded(.up))))
    }

    private static func accountKey(_ email: String) -> String { "login:acct:\(email)" }
    private static func addressKey(_ client: String) -> String { "login:addr:\(client)" }
}
