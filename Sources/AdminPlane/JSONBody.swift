import Foundation

/// Bad input from a client: 400 (or the given status) naming the field and the reason.
struct BadInput: Error {
    let status: Int
    let message: String
    let field: String?

    init(_ message: String, field: String? = nil, status: Int = 400) {
        self.status = status
        self.message = message
        self.field = field
    }

    var response: AdminResponse { .error(status, message, field: field) }
}

/// A parsed JSON value that keeps its type exactly (a boolean is never a number).
enum JSONValue: Decodable {
    case null, bool(Bool), int(Int), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

/// A JSON object body, checked field by field: unknown fields, wrong types and out-of-range
/// values are refused with the field's name, before anything is changed.
struct JSONBody {
    let object: [String: JSONValue]

    init(_ bytes: [UInt8], allowed: Set<String>) throws(BadInput) {
        if bytes.isEmpty { try self.init(object: [:], allowed: allowed); return }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)),
              case .object(let object) = value else { throw BadInput("body is not a JSON object") }
        try self.init(object: object, allowed: allowed)
    }

    init(object: [String: JSONValue], allowed: Set<String>, path: String = "") throws(BadInput) {
        for key in object.keys.sorted() where !allowed.contains(key) { throw BadInput("unknown field", field: path + key) }
        self.object = object
        self.path = path
    }

    private(set) var path = ""

    private func present(_ key: String) -> JSONValue? {
        guard let v = object[key] else { return nil }
        if case .null = v { return nil }
        return v
    }

    func has(_ key: String) -> Bool { present(key) != nil }

    func string(_ key: String, required: Bool = false, maxLength: Int = 512) throws(BadInput) -> String? {
        guard let value = present(key) else {
            if required { throw BadInput("is required", field: path + key) }
            return nil
        }
        guard case .string(let s) = value else { throw BadInput("must be a string", field: path + key) }
        guard s.utf8.count <= maxLength else { throw BadInput("longer than \(maxLength) bytes", field: path + key) }
        guard !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw BadInput("contains control characters", field: path + key)
        }
        return s
    }

    func int(_ key: String, range: ClosedRange<Int>, required: Bool = false) throws(BadInput) -> Int? {
        guard let value = present(key) else {
            if required { throw BadInput("is required", field: path + key) }
            return nil
        }
        guard case .int(let i) = value else { throw BadInput("must be an integer", field: path + key) }
        guard range.contains(i) else { throw BadInput("must be between \(range.lowerBound) and \(range.upperBound)", field: path + key) }
        return i
    }

    /// A string or an integer as text (the seeds send node ids as numbers, names as strings).
    func scalarText(_ key: String) throws(BadInput) -> String? {
        guard let value = present(key) else { return nil }
        switch value {
        case .int(let i): return String(i)
        case .string: return try string(key, maxLength: 64)
        default: throw BadInput("must be a node id or name", field: path + key)
        }
    }

    func bool(_ key: String) throws(BadInput) -> Bool? {
        guard let value = present(key) else { return nil }
        guard case .bool(let b) = value else { throw BadInput("must be true or false", field: path + key) }
        return b
    }

    func stringMap(_ key: String) throws(BadInput) -> [String: String]? {
        guard let value = present(key) else { return nil }
        guard case .object(let m) = value, m.count <= 32 else { throw BadInput("must be an object of at most 32 strings", field: path + key) }
        var out: [String: String] = [:]
        for (k, v) in m {
            guard case .string(let s) = v, k.utf8.count <= 64, s.utf8.count <= 256,
                  k.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw BadInput("labels are short names with string values", field: "\(path)\(key).\(k)")
            }
            out[k] = s
        }
        return out
    }

    /// A list of at most `max` strings, each checked like `string`.
    func strings(_ key: String, max: Int, maxLength: Int = 253) throws(BadInput) -> [String]? {
        guard let value = present(key) else { return nil }
        guard case .array(let a) = value, a.count <= max else { throw BadInput("must be a list of at most \(max) strings", field: path + key) }
        var out: [String] = []
        for (i, item) in a.enumerated() {
            guard case .string(let s) = item, s.utf8.count <= maxLength,
                  !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw BadInput("must be a string of at most \(maxLength) bytes", field: "\(path)\(key)[\(i)]")
            }
            out.append(s)
        }
        return out
    }

    /// A nested object, checked against `allowed`.
    func object(_ key: String, allowed: Set<String>) throws(BadInput) -> JSONBody? {
        guard let value = present(key) else { return nil }
        guard case .object(let o) = value else { throw BadInput("must be an object", field: path + key) }
        return try JSONBody(object: o, allowed: allowed, path: "\(path)\(key).")
    }

    /// A list of objects, each checked against `allowed`.
    func objects(_ key: String, max: Int, allowed: Set<String>) throws(BadInput) -> [JSONBody]? {
        guard let value = present(key) else { return nil }
        guard case .array(let a) = value, a.count <= max else { throw BadInput("must be a list of at most \(max) objects", field: path + key) }
        var out: [JSONBody] = []
        for (i, item) in a.enumerated() {
            guard case .object(let o) = item else { throw BadInput("must be an object", field: "\(path)\(key)[\(i)]") }
            out.append(try JSONBody(object: o, allowed: allowed, path: "\(path)\(key)[\(i)]."))
        }
        return out
    }
}

/// Node names and pool names: `[A-Za-z0-9._-]{1,64}`.
func isName(_ s: String) -> Bool {
    let u = s.utf8
    return !u.isEmpty && u.count <= 64 && u.allSatisfy {
        ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
    }
}
