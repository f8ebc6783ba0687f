/// One field of a JSON body as the client sent it, before validation. Decoding never fails on a
/// single field, so that the validator can report every bad field at once.
public enum FieldInput<Value: Sendable>: Sendable {
    case absent
    case null
    /// Present but of the wrong JSON type (a number where a string belongs).
    case wrongType
    case value(Value)
}

extension FieldInput: Equatable where Value: Equatable {}

extension KeyedDecodingContainer {
    /// Reads one field without throwing for a missing key or a value of the wrong type.
    func field<Value: Decodable & Sendable>(_ key: Key, as type: Value.Type = Value.self) -> FieldInput<Value> {
        guard self.contains(key) else { return .absent }
        if (try? self.decodeNil(forKey: key)) == true { return .null }
        guard let value = try? self.decode(Value.self, forKey: key) else { return .wrongType }
        return .value(value)
    }
}
