/// Where a pod's last migration stands. `syncing`: the data is being copied to
/// `migrationTargetNode` (the pod still lives on `nodeID`); `done`: the owner changed.
public enum PodMigrationStatus: String, Sendable, Equatable {
    case syncing, done
}

/// A data pod (the seed's `identity_pod` row): one user's Solid pod, living on one center node.
/// Pods are created by operators (the admin API, in bulk), never placed by hashing, and
/// migrated by an instant change of `nodeID`. Times are Unix milliseconds.
public struct PodRecord: Sendable, Equatable {
    /// `pod_id`, the same rules as placement keys: `[A-Za-z0-9_-]{1,64}`.
    public var id: String
    /// `base_url` ("https://alice.pods.example/"); may be empty.
    public var baseURL: String
    /// `account_id`; may be empty.
    public var accountID: String
    /// The owning center's node name (NodeRecord name rules). It need not be registered: pods
    /// may be imported before their center first starts.
    public var nodeID: String
    /// nil: never migrated.
    public var migrationStatus: PodMigrationStatus?
    public var migrationTargetNode: String?
    /// 0...100.
    public var migrationProgress: Int
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, baseURL: String = "", accountID: String = "", nodeID: String,
                migrationStatus: PodMigrationStatus? = nil, migrationTargetNode: String? = nil,
                migrationProgress: Int = 0, createdAt: Int64 = 0, updatedAt: Int64 = 0) {
        self.id = id
        self.baseURL = baseURL
        self.accountID = accountID
        self.nodeID = nodeID
        self.migrationStatus = migrationStatus
        self.migrationTargetNode = migrationTargetNode
        self.migrationProgress = migrationProgress
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Equal but for the times: what "the same pod" means to an idempotent import.
    public func sameFields(as other: PodRecord) -> Bool {
        var a = self, b = other
        a.createdAt = 0; a.updatedAt = 0
        b.createdAt = 0; b.updatedAt = 0
        return a == b
    }

    /// Refuses a record the registry cannot route by, with a short reason.
    public static func validate(_ r: PodRecord) throws(RegistryError) {
        var id = r.id
        guard id.withUTF8({ KeyExtractor.isValidKey(UnsafeRawBufferPointer($0)) }) else { throw .invalidPod("pod id must be 1-64 characters of [A-Za-z0-9_-]: \(r.id)") }
        guard isNodeName(r.nodeID) else {
            throw .invalidPod("\(r.id): node_id must be 1-64 characters of [A-Za-z0-9._-]: \(r.nodeID)")
        }
        if let target = r.migrationTargetNode, !isNodeName(target) {
            throw .invalidPod("\(r.id): migration_target_node must be a node name: \(target)")
        }
        guard (0...100).contains(r.migrationProgress) else { throw .invalidPod("\(r.id): migration_progress must be 0...100") }
        guard r.baseURL.isEmpty || r.baseURL.hasPrefix("http://") || r.baseURL.hasPrefix("https://"),
              r.baseURL.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .invalidPod("\(r.id): base_url must be empty or an http(s) URL without spaces")
        }
        guard r.accountID.utf8.count <= 256 else { throw .invalidPod("\(r.id): account_id longer than 256 bytes") }
    }

    /// The `NodeRecord.name` rules (see `NodeDirectory.validate`).
    static func isNodeName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { KeyExtractor.isKeyByte($0) || $0 == UInt8(ascii: ".") }
    }
}
