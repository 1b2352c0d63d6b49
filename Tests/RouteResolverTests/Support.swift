@testable import RouteResolver

/// Looks up `host` and `path` the way the engine does: as raw byte ranges, host without its port.
func match(_ table: RouteTable, host: String, path: String) -> Int? {
    let h = Array(host.utf8), p = Array(path.utf8)
    return h.withUnsafeBytes { hb in p.withUnsafeBytes { pb in table.match(host: hb, path: pb) } }
}

func route(_ name: String, host: String? = nil, _ prefix: String) -> Route {
    let pattern = host.map { HostPattern($0)! }
    return Route(name: name, host: pattern, pathPrefix: prefix, target: .upstreams(["127.0.0.1:9000"]))
}

/// Name of the route `table` picks, or nil.
func pick(_ table: RouteTable, host: String = "h", _ path: String) -> String? {
    match(table, host: host, path: path).map { table.routes[$0].name }
}
