import Foundation
import Hummingbird
import Logging
import NIOCore

/// RFC 9457 problem details body.
struct ProblemDetails: Encodable, Sendable {
    var type = "about:blank"
    var title: String
    var status: Int
    var detail: String
    var errors: [FieldError]?
}

/// The one place where errors become HTTP responses: every error, from a service, from Hummingbird
/// (unknown route, body too large) or unexpected, leaves as `application/problem+json`. Unexpected
/// errors are logged with their cause and answered without internals.
struct ProblemDetailsMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return Self.response(for: error, logger: context.logger)
        }
    }

    static func problem(for error: any Error, logger: Logger) -> ProblemDetails {
        let (status, detail, fieldErrors) = classify(error, logger: logger)
        return ProblemDetails(title: status.reasonPhrase, status: status.code, detail: detail, errors: fieldErrors)
    }

    static func response(for error: any Error, logger: Logger) -> Response {
        let problem = problem(for: error, logger: logger)
        let status = HTTPResponse.Status(code: problem.status)
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if case .rateLimited(_, let limit, let retryAfter) = error as? AppError {
            headers[.retryAfter] = String(retryAfter)
            headers[.rateLimitLimit] = String(limit)
            headers[.rateLimitRemaining] = "0"
            headers[.rateLimitReset] = String(retryAfter)
        }
        if let httpError = error as? HTTPError {
            for field in httpError.headers where field.name != .contentType && field.name != .contentLength {
                headers.append(field)
            }
        }
        let body = (try? APIJSON.encoder.encode(problem)) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private static func classify(_ error: any Error, logger: Logger) -> (HTTPResponse.Status, String, [FieldError]?) {
        switch error {
        case let error as AppError:
            switch error {
            case .badRequest(let detail, let field): return (.badRequest, detail, field.map { [$0] })
            case .unauthorized(let detail): return (.unauthorized, detail, nil)
            case .forbidden(let detail): return (.forbidden, detail, nil)
            case .notFound(let detail): return (.notFound, detail, nil)
            case .conflict(let detail): return (.conflict, detail, nil)
            case .unsupportedMediaType(let detail): return (.unsupportedMediaType, detail, nil)
            case .rateLimited(let detail, _, _): return (.tooManyRequests, detail, nil)
            case .validation(let errors):
                let fields = errors.map(\.field).joined(separator: ", ")
                return (.unprocessableContent, "Invalid fields: \(fields).", errors)
            case .unavailable(let detail): return (.serviceUnavailable, detail, nil)
            }
        case let error as HTTPError:
            return (error.status, error.body ?? defaultDetail(for: error.status), nil)
        case let error as any HTTPResponseError:
            return (error.status, defaultDetail(for: error.status), nil)
        default:
            if DatabaseFailure(error) == .unavailable {
                logger.error("database unavailable", metadata: ["error": "\(RedactedErrorDescription(error))"])
                return (.serviceUnavailable, "The service cannot reach its database; try again shortly.", nil)
            }
            logger.error("unexpected error", metadata: ["error": "\(RedactedErrorDescription(error))"])
            return (.internalServerError, "An unexpected error occurred.", nil)
        }
    }

    private static func defaultDetail(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "No resource is at this address."
        case .methodNotAllowed: return "This method is not allowed here."
        case .contentTooLarge: return "The request body is too large."
        default: return status.reasonPhrase
        }
    }
}
