import RouteResolver

/// Writes node labels as a JSON object for the `nodes.labels` column. Reading goes through
/// SQLite's `json_each`, so only the encoder lives here.
enum LabelsJSON {
    /// Keys sorted, so the same labels always produce the same text.
    static func encode(_ labels: [String: String]) -> String {
        if labels.isEmpty { return "{}" }
        var out = "{"
        for (index, key) in labels.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            appendString(key, to: &out)
            out += ":"
            appendString(labels[key]!, to: &out)
        }
        out += "}"
        return out
    }

    /// A JSON string literal (RFC 8259 section 7): quote, backslash and control characters are
    /// escaped; everything else, non-ASCII included, is valid as is.
    private static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
