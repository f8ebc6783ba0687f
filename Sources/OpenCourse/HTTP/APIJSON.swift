import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The API's JSON conventions in one place: camelCase keys (Swift's own), ISO 8601 UTC timestamps
/// with milliseconds, and request bodies that must be JSON objects.
public enum APIJSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.iso8601(date))
        }
        // Sorted keys make equal values encode to equal bytes (stable bodies, stable ETags).
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }()

    public struct Encoder: ResponseEncoder {
        public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
            APIJSON.response(ByteBuffer(bytes: try APIJSON.encoder.encode(value)))
        }
    }

    static let contentType = "application/json; charset=utf-8"
    static let contentTypeField = HTTPField(name: .contentType, value: contentType)

    /// A 200 with a JSON body already encoded (once, for a constant answer).
    static func response(_ body: ByteBuffer) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: body))
    }

    /// Decodes a body that must be a JSON object. Malformed JSON, invalid UTF-8 and non-objects are
    /// 400; field-level problems are left to the services' validation.
    public struct Decoder: RequestDecoder {
        public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
            if let contentType = request.headers[.contentType], !APIJSON.isJSON(contentType: contentType) {
                throw AppError.unsupportedMediaType("Send the request body as application/json.")
            }
            var request = request
            let buffer = try await request.collectBody(upTo: context.maxUploadSize)
            return try APIJSON.decodeObject(type, from: Data(buffer: buffer))
        }
    }

    static func decodeObject<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        guard data.contains(where: { !Self.isJSONWhitespace($0) }) else {
            throw AppError.badRequest("The request body must be a JSON object.")
        }
        // JSON is UTF-8 (RFC 8259 8.1); checked first, so that a bad byte inside a string is not
        // mistaken for a field of the wrong type.
        guard String(validating: data, as: UTF8.self) != nil else {
            throw AppError.badRequest("The request body is not valid UTF-8.")
        }
        let value: T
        do {
            value = try JSONDecoder().decode(type, from: data)
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw AppError.badRequest("The request body must be a JSON object.")
        } catch {
            throw AppError.badRequest("The request body is not valid JSON.")
        }
        if let name = JSONMemberNames.firstDuplicate(in: data) {
            throw AppError.validation([FieldError(field: name, message: "must appear only once")])
        }
        return value
    }

    /// `application/json`, or any `+json` type, with or without parameters.
    static func isJSON(contentType: String) -> Bool {
        // Media types are ASCII and case-insensitive.
        let type = contentType.prefix { $0 != ";" }.trimmingHTTPWhitespace().asciiLowercased()
        return type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json"))
    }

    private static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
