import RouteResolver

/// Which rows a batch of change-log entries asks a follower to read back, the same for every
/// engine: this instance's own authoritative writes are skipped (memory had them first), its
/// conditional ones (writer `*`) are not; a run of entries for one row is read once, and the
/// order of different rows is kept (a node before the placements on it).
enum FeedBatch {
    struct Row: Equatable {
        let isNode: Bool
        let pool: String
        let name: String
    }

    static func rowsToRead(_ entries: [ChangeLogEntry], writerID: String) -> [Row] {
        var rows: [Row] = []
        var previous: Row?
        for e in entries where e.writer != writerID {
            let row = Row(isNode: e.kind == "node", pool: e.pool, name: e.name)
            if row == previous { continue }
            previous = row
            rows.append(row)
        }
        return rows
    }
}

/// One change-log row: which row changed, by which writer (`*`: read back by every instance).
struct ChangeLogEntry: Equatable {
    let seq: Int64
    let writer: String
    let kind: String
    let pool: String
    let name: String
}
