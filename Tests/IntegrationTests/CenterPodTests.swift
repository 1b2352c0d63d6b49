// Center nodes (issue 14): three gateway processes ("centers") on one real PostgreSQL, each with
// its own pod server (peers/podserver.py). A data pod is owned by one center (its node_id); a
// request reaching another center is forwarded to the owner's cluster listener with the hop chain
// and the cluster secret, and the owner serves it from its pod server, which sees the chain but
// never the secret. Also: a 50 MB upload streams through two centers with bounded memory; a
// migration moves the next request on every center (time printed for bench/README.md) while an
// in-flight download finishes where it started and the pod's terminals are closed with 1012;
// unknown pods and reserved paths; two centers that disagree answer 508 instead of ping-ponging;
// a stopped owner gives 503 (unreachable, then down); the node list and the pod pages.

import Foundation
import PostgresTestServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Center nodes: data pods forwarded between gateways on one PostgreSQL", .serialized)
struct CenterPodTests {
    /// `GET path` through a client; the pod server's answer.
    private func fetch(_ client: HTTPClient, _ path: String, headers: [String] = []) throws -> Reply {
        try client.send("GET", path, headers: headers)
    }

    @Test("alice on center-a answers from pod server A through A, B and C; A sees X-Switchyard-Hop 'center-a' directly and 'center-x, center-a' via another center, never the cluster secret; forged hop and cluster headers on a public listener, or on the cluster listener without the secret, are not kept; unknown pods 404; reserved paths and / go to the asked center's own pod server; route explain says so")
    func forwardingAndHopHeaders() throws {
        let pg = try PostgresServer()
        let scope = try Scope("center-hops")
        defer { scope.close() }
        let w = try scope.startCenters(pg)
        defer { w.stopPeers() }
        try w.createPods([("alice", "center-a")])
        let (a, b) = (w.centers[0], w.centers[1])

        // Through every center, twice on one keep-alive connection: always pod server A.
        for (i, c) in w.centers.enumerated() {
            let web = c.web()
            let expectedHop = i == 0 ? "center-a" : "\(c.name), center-a"
            for n in 0..<2 {
                let r = try fetch(web, "/alice/profile/card?n=\(n)")
                #expect(r.status == 200 && r.json["server"].string == "A", "via \(c.name): \(r)")
                #expect(r.json["path"].string == "/alice/profile/card?n=\(n)", "via \(c.name): \(r)")
                #expect(r.json["hop"].string == expectedHop, "via \(c.name): \(r)")
                #expect(r.json["cluster"].isNull, "the cluster secret reached the pod server via \(c.name): \(r)")
                #expect(r.header("X-Pod-Server") == "A", "via \(c.name): \(r)")
            }
            // A body goes along.
            let post = try web.send("POST", "/alice/inbox", headers: ["Content-Type: text/plain"], body: Array("hello from \(c.name)".utf8))
            #expect(post.status == 200 && post.json["server"].string == "A" && post.json["method"].string == "POST"
                    && post.json["received"].int == "hello from \(c.name)".utf8.count, "via \(c.name): \(post)")
        }

        // Forged headers from a client. To B's public listener: B drops them and sends its own.
        let forged = ["X-Switchyard-Hop: evil", "X-Switchyard-Cluster: guess"]
        let viaB = try fetch(b.web(), "/alice/forged", headers: forged)
        #expect(viaB.status == 200 && viaB.json["server"].string == "A", "\(viaB)")
        #expect(viaB.json["hop"].string == "center-b, center-a" && viaB.json["cluster"].isNull, "\(viaB)")
        // Even the real secret on a public listener proves nothing.
        let realOnPublic = try fetch(a.web(), "/alice/forged", headers: ["X-Switchyard-Hop: center-b", "X-Switchyard-Cluster: \(w.secret)"])
        #expect(realOnPublic.status == 200 && realOnPublic.json["hop"].string == "center-a" && realOnPublic.json["cluster"].isNull,
                "\(realOnPublic)")
        // Straight to A's cluster listener with a wrong secret, or none: the chain is A's alone.
        for headers in [forged, ["X-Switchyard-Hop: evil"], ["X-Switchyard-Hop: center-b", "X-Switchyard-Cluster: \(w.secret)x"]] {
            let r = try fetch(a.internalClient(), "/alice/forged", headers: headers)
            #expect(r.status == 200 && r.json["server"].string == "A", "\(headers): \(r)")
            #expect(r.json["hop"].string == "center-a" && r.json["cluster"].isNull, "\(headers): \(r)")
        }
        // With the secret, on the cluster listener: a center's request, its chain kept.
        let asCenter = try fetch(a.internalClient(), "/alice/from-b", headers: ["X-Switchyard-Hop: center-b", "X-Switchyard-Cluster: \(w.secret)"])
        #expect(asCenter.status == 200 && asCenter.json["hop"].string == "center-b, center-a" && asCenter.json["cluster"].isNull,
                "\(asCenter)")

        // A chunked body through B, and on a pipelined keep-alive connection the next request.
        let chunked = Array("POST /alice/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".utf8)
        let bWeb = b.web()
        let ch = try bWeb.exchange(chunked)
        #expect(ch.status == 200 && ch.json["server"].string == "A" && ch.json["received"].int == 11, "\(ch)")
        #expect(try fetch(bWeb, "/alice/next").json["hop"].string == "center-b, center-a")

        // An unknown pod: 404 with JSON, from every center, and no pod server asked.
        for c in w.centers {
            let r = try fetch(c.web(), "/nobody/x")
            #expect(r.status == 404 && r.json["error"].string == "unknown pod", "via \(c.name): \(r)")
            #expect(r.header("Content-Type")?.contains("application/json") == true, "via \(c.name): \(r.headers)")
            #expect(r.header("X-Pod-Server") == nil, "via \(c.name): \(r)")
        }
        for p in w.podServers { #expect(try p.count("nobody") == 0, "pod server \(p.name) was asked for an unknown pod") }

        // Reserved first segments and the root: the asked center's own pod server.
        for (i, c) in w.centers.enumerated() {
            let web = c.web()
            for path in ["/", "/.well-known/x", "/api/x", "/idp/x", "/.account/x", "/.internal/x", "/.cluster/pods"] {
                let r = try fetch(web, path)
                #expect(r.status == 200 && r.json["server"].string == CenterWorld.letters[i] && r.json["path"].string == path,
                        "\(path) via \(c.name): \(r)")
                #expect(r.json["cluster"].isNull, "\(path) via \(c.name): \(r)")
            }
            // Forged headers on a local path are not passed on either.
            let r = try fetch(web, "/.well-known/forged", headers: forged)
            #expect(r.status == 200 && r.json["server"].string == CenterWorld.letters[i] && r.json["cluster"].isNull
                    && !(r.json["hop"].string ?? "").contains("evil"), "forged headers on a reserved path via \(c.name): \(r)")
        }

        // Route explain: B forwards alice to A's internal address; A serves her itself.
        let explainURL = "/admin/routes/explain?url=http%3A%2F%2F127.0.0.1%2Falice%2Fx"
        let eb = try b.admin().get(explainURL)
        #expect(eb.status == 200 && eb.json["target"].string == "pods" && eb.json["pod_id"].string == "alice", "\(eb)")
        #expect(eb.json["center"].string == "center-a" && eb.json["upstream"].string == a.internalAddress, "\(eb)")
        #expect(eb.json["pod"]["node_id"].string == "center-a" && eb.json["key_source"].string != nil && eb.json["why"].string != nil, "\(eb)")
        let ea = try a.admin().get(explainURL)
        #expect(ea.status == 200 && ea.json["target"].string == "pods" && ea.json["center"].string == "this center", "\(ea)")
        #expect(ea.json["upstream"].array.compactMap(\.string) == [w.podServers[0].address], "\(ea)")
        let unknown = try w.centers[2].admin().get("/admin/routes/explain?url=http%3A%2F%2F127.0.0.1%2Fnobody%2Fx")
        #expect(unknown.status == 200 && unknown.json["pod_id"].string == "nobody" && unknown.json["pod"].isNull
                && unknown.json["why"].string != nil, "\(unknown)")
        w.expectFeedApplied()
    }

    @Test("a 50 MB upload through C to alice on A streams: pod server A counts every byte with the same sha256, and neither C nor A grows by 30 MB")
    func uploadStreams() throws {
        let pg = try PostgresServer()
        let scope = try Scope("center-upload")
        defer { scope.close() }
        let w = try scope.startCenters(pg)
        defer { w.stopPeers() }
        try w.createPods([("alice", "center-a")])
        let (a, c) = (w.centers[0], w.centers[2])
        let size = 50 * 1024 * 1024
        let file = try scope.makePayload("upload.bin", size: size)
        let digest = try scope.sha256(ofFile: file)
        // A warm-up exchange, so the baselines include each center's buffers and pools.
        #expect(try fetch(c.web(), "/alice/warm").json["server"].string == "A")

        let baseC = try #require(c.child.rssKiB()), baseA = try #require(a.child.rssKiB())
        let samplerC = RSSSampler(c.child), samplerA = RSSSampler(a.child)
        // -T streams the file (Content-Length, Expect: 100-continue); -X POST keeps it a POST.
        // Pod server A reads at about 20 MiB/s: for ~2.5 s both centers must hold the client back
        // rather than take the body in (a center that buffered it would grow by up to 50 MB).
        let r = try scope.curl(["-X", "POST", "-T", file, "-H", "Content-Type: application/octet-stream", c.url("/alice/upload?mbps=20")],
                               maxTime: 120)
        let (nC, peakC) = samplerC.stop(), (nA, peakA) = samplerA.stop()
        print("centerUpload: 50 MB through C to A in \(String(format: "%.2f", r.timeTotal)) s; RSS C \(baseC) -> peak \(peakC) KiB (\(nC) samples), A \(baseA) -> peak \(peakA) KiB (\(nA) samples)")
        #expect(r.status == 200, "\(r.summary)")
        let answer = AJSON(data: r.body)
        #expect(answer["server"].string == "A" && answer["method"].string == "POST", "\(answer)")
        #expect(answer["received"].int == size, "pod server A received \(answer["received"]) of \(size) bytes")
        #expect(answer["sha256"].string == digest, "pod server A received different bytes")
        #expect(answer["hop"].string == "center-c, center-a" && answer["cluster"].isNull, "\(answer)")
        #expect(r.timeTotal > 1.5, "the upload took \(r.timeTotal) s: pod server A did not pace its reading")
        #expect(nC > 0 && nA > 0)
        #expect(peakC - baseC < 30 * 1024, "C grew by \((peakC - baseC) / 1024) MiB during the upload")
        #expect(peakA - baseA < 30 * 1024, "A grew by \((peakA - baseA) / 1024) MiB during the upload")
        w.expectFeedApplied()
    }

    @Test("migrating alice from A to C (through B's admin API): a slow download started through B finishes from A with every byte; alice's terminals through B and on A are closed with 1012, carol's (also on A) stays; the next request through every center lands on C (time printed)")
    func migration() throws {
        let pg = try PostgresServer()
        let scope = try Scope("center-migrate")
        defer { scope.close() }
        let w = try scope.startCenters(pg)
        defer { w.stopPeers() }
        try w.createPods([("alice", "center-a"), ("carol", "center-a")])
        let (a, b, c) = (w.centers[0], w.centers[1], w.centers[2])
        let webs = w.centers.map { $0.web() }
        for web in webs { #expect(try fetch(web, "/alice/x").json["server"].string == "A") }

        // The in-flight download: 8 MiB over 4 s through B, from A.
        let size = 8 * 1024 * 1024
        let out = scope.path("slow.bin")
        let download = Locked<CurlResult?>(nil)
        let finishedAt = Locked<Date?>(nil)
        let threads = ThreadGroup()
        threads.start {
            let r = try? scope.curl([b.url("/alice/slow?seconds=4&size=\(size)")], maxTime: 30, bodyFile: out)
            finishedAt.withLock { $0 = Date() }
            download.withLock { $0 = r }
        }
        #expect(try eventually(5) { try w.podServers[0].stats()["slow_active"].int == 1 }, "the download never started at A")

        // Terminals: alice through B (to A) and straight on A; carol through C (to A).
        let aliceViaB = try WSConnection(port: b.config.publicPort, path: "/alice/-/terminal")
        let aliceOnA = try WSConnection(port: a.config.publicPort, path: "/alice/-/terminal")
        let aliceViaC = try WSConnection(port: c.config.publicPort, path: "/alice/-/terminal")
        let carolViaC = try WSConnection(port: c.config.publicPort, path: "/carol/-/terminal")
        #expect(aliceViaB.ask("ls") == "A: ls")
        #expect(aliceViaC.ask("id") == "A: id")
        #expect(AJSON(text: aliceViaB.ask("__info__") ?? "")["hop"].string == "center-b, center-a")
        #expect(aliceOnA.ask("pwd") == "A: pwd")
        #expect(carolViaC.ask("whoami") == "A: whoami")

        // The migration, through a center that is neither the owner nor the target.
        let r = try b.admin().call("POST", "/.cluster/pods/alice/migrate", #"{"target_node": "center-c"}"#)
        let answered = Date()
        try #require(r.status == 200, "\(r)")
        #expect(r.json["from"].string == "center-a" && r.json["to"].string == "center-c", "\(r)")
        #expect(r.json["pod"]["node_id"].string == "center-c" && r.json["pod"]["migration_status"].string == "done", "\(r)")
        #expect(try w.podServers[0].stats()["slow_active"].int == 1, "the download ended before the migration: not in flight")

        // Until every center routes alice to C.
        var lags: [Int: Double] = [:]
        while lags.count < 3 && Date().timeIntervalSince(answered) < 5 {
            for i in 0..<3 where lags[i] == nil {
                if try fetch(webs[i], "/alice/x").json["server"].string == "C" {
                    lags[i] = Date().timeIntervalSince(answered) * 1000
                }
            }
        }
        #expect(lags.count == 3, "centers \(Set(0..<3).subtracting(lags.keys).map { w.centers[$0].name }) still route alice elsewhere after 5 s")
        let worst = lags.values.max() ?? -1
        print(String(format: "centerMigration: migrate through B answered -> all three centers route alice to C after %.1f ms (A %.1f, B %.1f, C %.1f ms)",
                     worst, lags[0] ?? -1, lags[1] ?? -1, lags[2] ?? -1))
        // Loosely: the machine is shared; the figure itself goes to bench/README.md.
        #expect(worst < 1_000, "\(worst) ms")
        // And stays there, with the chain of the new route.
        for (i, web) in webs.enumerated() {
            let hop = i == 2 ? "center-c" : "\(w.centers[i].name), center-c"
            let again = try fetch(web, "/alice/after")
            #expect(again.json["server"].string == "C" && again.json["hop"].string == hop && again.json["cluster"].isNull, "via \(w.centers[i].name): \(again)")
        }

        // alice's terminals are closed with 1012 (Service Restart) on every center; carol's stays.
        let closedB = aliceViaB.waitForClose(timeout: 5), closedA = aliceOnA.waitForClose(timeout: 5)
        let closedC = aliceViaC.waitForClose(timeout: 5)
        #expect(closedB.ended && closedB.code == 1012, "alice's terminal through B: \(closedB)")
        #expect(closedA.ended && closedA.code == 1012, "alice's terminal on A: \(closedA)")
        #expect(closedC.ended && closedC.code == 1012, "alice's terminal through C (the new owner): \(closedC)")
        #expect(carolViaC.ask("still there?") == "A: still there?", "carol's terminal was touched")
        // ... and their tunnels to pod server A end too: only carol's is left open there.
        var open: Int?
        #expect(try eventually(5) {
            open = try w.podServers[0].stats()["terminals_open"].int
            return open == 1
        }, "pod server A still has \(open ?? -1) terminals open (carol's only expected)")
        let reopened = try WSConnection(port: b.config.publicPort, path: "/alice/-/terminal")
        #expect(reopened.ask("ls") == "C: ls", "a new terminal through B")

        // The in-flight download finished where it started, complete.
        try threads.wait(timeout: 30)
        let d = try #require(download.value, "curl did not run")
        #expect(d.status == 200 && d.exitCode == 0, "\(d.summary)")
        #expect(d.header("X-Pod-Server") == "A", "the download was answered by \(d.header("X-Pod-Server") ?? "nobody")")
        let got = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? -1
        #expect(got == size, "the download got \(got) of \(size) bytes")
        #expect((finishedAt.value ?? .distantPast) > answered, "the download finished before the migration was answered")

        // Every center's registry agrees, and counts the pods where they are now.
        try w.waitOwner("alice", "center-c")
        let row = try a.admin().get("/.cluster/pods/alice")
        #expect(row.json["migration_status"].string == "done" && row.json["migration_target_node"].string == "center-c"
                && row.json["owner"]["node_id"].string == "center-c", "\(row)")
        let nodes = try c.admin().get("/.cluster/nodes").json["nodes"].array
        let counts = Dictionary(uniqueKeysWithValues: nodes.compactMap { n in n["node_id"].string.map { ($0, n["pods"].int ?? -1) } })
        #expect(counts == ["center-a": 1, "center-b": 0, "center-c": 1], "\(nodes)")
        w.expectFeedApplied()
    }

    @Test("two centers that disagree about bob's owner answer 508 'pod routing loop' after max_hops (1) instead of forwarding back and forth; no pod server sees bob until a real change (a migration) heals the views")
    func disagreementGives508() throws {
        let pg = try PostgresServer()
        let scope = try Scope("center-loop")
        defer { scope.close() }
        var w = try scope.startCenters(pg)
        defer { w.stopPeers() }
        // bob on center-b, through B's admin API: every center's view says center-b.
        try w.createPods([("bob", "center-b")], via: 1)

        // Make the views disagree, for real: change the row in PostgreSQL behind the gateways'
        // backs. A plain UPDATE writes no change_log row and sends no notification, so the
        // running centers keep their in-memory view (bob on center-b) — checked below. Then
        // restart B alone: it loads the table at start and now believes bob is on center-a,
        // while A (and C) still believe center-b. Each of A and B would forward bob to the
        // other: without the hop limit a request would ping-pong between them forever.
        let updated = try pg.sql("UPDATE switchyard.pods SET node_id = 'center-a' WHERE pod_id = 'bob' RETURNING pod_id")
        try #require(updated.trimmingCharacters(in: .whitespacesAndNewlines) == "bob", "the UPDATE changed no row: \(updated.debugDescription)")
        usleep(500_000)
        for c in w.centers {
            #expect(try c.admin().get("/.cluster/pods/bob").json["node_id"].string == "center-b",
                    "\(c.name) saw the hidden UPDATE: the test's premise (no change-log row, no feed) does not hold")
        }
        w.centers[1].child.stop()
        w.centers[1] = try scope.startCenter(w.centers[1].config, name: "center-b-restarted")
        let (a, b, c) = (w.centers[0], w.centers[1], w.centers[2])
        #expect(try b.admin().get("/.cluster/pods/bob").json["node_id"].string == "center-a", "the restarted B did not load the row")
        #expect(try a.admin().get("/.cluster/pods/bob").json["node_id"].string == "center-b")
        try w.waitOwner("bob", "center-b", on: [0, 2])

        // Via B: B forwards to A (hop center-b); A's view says center-b, the one hop allowed is
        // used: 508, naming A's idea of the owner. Via A: A forwards to B, B's view says center-a:
        // 508. Via C (stale like A): C forwards to B: 508.
        for (via, owner) in [(b, "center-b"), (a, "center-a"), (c, "center-a")] {
            let started = Date()
            let r = try fetch(via.web(), "/bob/x")
            let ms = Date().timeIntervalSince(started) * 1000
            #expect(r.status == 508, "via \(via.name): \(r)")
            #expect(r.json["error"].string == "pod routing loop" && r.json["owner"].string == owner, "via \(via.name): \(r)")
            #expect(ms < 2_000, "via \(via.name): the 508 took \(Int(ms)) ms")
        }
        // Ten more each: nothing reached a pod server, and every center still answers.
        for via in [a, b, c] {
            let web = via.web()
            for _ in 0..<10 { #expect(try fetch(web, "/bob/y").status == 508) }
        }
        for p in w.podServers { #expect(try p.count("bob") == 0, "pod server \(p.name) served bob") }
        // Explain shows each side's view: A would forward to B, B to A.
        let ea = try a.admin().get("/admin/routes/explain?url=%2Fbob%2Fx")
        #expect(ea.status == 200 && ea.json["center"].string == "center-b", "A's view: \(ea)")
        let eb = try b.admin().get("/admin/routes/explain?url=%2Fbob%2Fx")
        #expect(eb.status == 200 && eb.json["center"].string == "center-a", "B's view: \(eb)")

        // A real change (a migration through A, written with its change-log row) heals the views.
        let heal = try a.admin().call("POST", "/.cluster/pods/bob/migrate", #"{"target_node": "center-a"}"#)
        #expect(heal.status == 200 && heal.json["to"].string == "center-a", "\(heal)")
        try w.waitOwner("bob", "center-a")
        for via in [a, b, c] {
            let r = try fetch(via.web(), "/bob/z")
            #expect(r.status == 200 && r.json["server"].string == "A", "via \(via.name) after the heal: \(r)")
        }
        w.expectFeedApplied()
    }

    @Test("alice's owner A killed: through B first 503 'pod owner unreachable' (heartbeat still fresh), after the 3 s threshold 503 'pod owner down', both with Retry-After and owner center-a; dora on B is served all along; /.cluster/nodes says center-a offline; A restarted serves alice again")
    func ownerStopped() throws {
        let pg = try PostgresServer()
        let scope = try Scope("center-down")
        defer { scope.close() }
        var w = try scope.startCenters(pg)
        defer { w.stopPeers() }
        try w.createPods([("alice", "center-a"), ("dora", "center-b")])
        let (b, c) = (w.centers[1], w.centers[2])
        let webB = b.web(), webC = c.web()
        #expect(try fetch(webB, "/alice/x").json["server"].string == "A")

        // kill -9: the process is gone at once, its last heartbeat still fresh for up to 3 s.
        w.centers[0].child.kill9()
        let killed = Date()
        for web in [webB, webC] {
            let r = try fetch(web, "/alice/x")
            #expect(Date().timeIntervalSince(killed) < 2.5, "too slow to see the fresh-heartbeat window")
            #expect(r.status == 503 && r.json["error"].string == "pod owner unreachable" && r.json["owner"].string == "center-a", "\(r)")
            #expect(r.header("Retry-After").flatMap { Int($0) }.map { $0 > 0 } == true, "Retry-After: \(r.header("Retry-After") ?? "none")")
        }

        // Then the heartbeat goes stale: "pod owner down".
        var last: Reply?
        let down = try eventually(8) {
            last = try fetch(webB, "/alice/x")
            return last?.json["error"].string == "pod owner down"
        }
        let staleAfter = Date().timeIntervalSince(killed)
        print(String(format: "centerOwnerDown: owner killed -> 'pod owner down' through B after %.2f s (threshold 3 s)", staleAfter))
        #expect(down, "still \(last.map { "\($0)" } ?? "-") \(Int(staleAfter)) s after the kill")
        if let r = last {
            #expect(r.status == 503 && r.json["owner"].string == "center-a", "\(r)")
            #expect(r.header("Retry-After").flatMap { Int($0) }.map { $0 > 0 } == true, "Retry-After: \(r.header("Retry-After") ?? "none")")
        }
        let viaC = try fetch(webC, "/alice/x")
        #expect(viaC.status == 503 && viaC.json["error"].string == "pod owner down" && viaC.json["owner"].string == "center-a", "\(viaC)")
        // Pods elsewhere do not care.
        for web in [webB, webC] {
            let r = try fetch(web, "/dora/x")
            #expect(r.status == 200 && r.json["server"].string == "B", "\(r)")
        }
        let nodes = try b.admin().get("/.cluster/nodes").json["nodes"].array
        let status = Dictionary(uniqueKeysWithValues: nodes.compactMap { n in n["node_id"].string.map { ($0, n["status"].string ?? "?") } })
        #expect(status == ["center-a": "offline", "center-b": "online", "center-c": "online"], "\(nodes)")

        // Back: A restarted on the same ports heartbeats again and serves alice.
        w.centers[0] = try scope.startCenter(w.centers[0].config, name: "center-a-restarted")
        var after: Reply?
        #expect(try eventually(8) {
            after = try fetch(webB, "/alice/x")
            return after?.json["server"].string == "A"
        }, "alice not served after A came back: \(after.map { "\($0)" } ?? "-")")
        w.expectFeedApplied()
    }

    @Test("/.cluster/nodes lists the three centers online with addresses, self and pod counts; 250 pods created in one request page through /.cluster/pods on another center (100 + 100 + 50, next null at the end); a second identical request creates nothing")
    func nodesAndPaging() throws {
        let pg = try PostgresServer()
        let scope = try Scope("center-paging")
        defer { scope.close() }
        let w = try scope.startCenters(pg)
        defer { w.stopPeers() }

        for (i, c) in w.centers.enumerated() {
            let r = try c.admin().get("/.cluster/nodes")
            #expect(r.status == 200 && r.json["self"].string == c.name, "\(r)")
            let nodes = r.json["nodes"].array
            #expect(nodes.count == 3, "\(r)")
            for (j, other) in w.centers.enumerated() {
                guard let n = nodes.first(where: { $0["node_id"].string == other.name }) else {
                    Issue.record("\(c.name) does not list \(other.name): \(r)")
                    continue
                }
                #expect(n["type"].string == "center" && n["status"].string == "online" && n["pods"].int == 0, "\(n)")
                #expect(n["internal_address"].string == other.internalAddress, "\(n)")
                #expect(n["public_address"].string == "http://127.0.0.1:\(other.config.publicPort)", "\(n)")
                #expect(n["self"].bool == (i == j), "\(n)")
                #expect((n["last_heartbeat"].int ?? 0) > 0, "\(n)")
            }
        }

        // 250 pods in one request, owners round robin over the three centers.
        let ids = (0..<250).map { String(format: "p%03d", $0) }
        let owner = { (i: Int) in CenterWorld.names[i % 3] }
        let body = #"{"pods": ["# + ids.enumerated().map { #"{"pod_id": "\#($0.element)", "node_id": "\#(owner($0.offset))"}"# }
            .joined(separator: ", ") + "]}"
        let admin = w.centers[0].admin()
        let created = try admin.call("POST", "/.cluster/pods", body)
        #expect(created.status == 201 && created.json["created"].int == 250 && created.json["replaced"].int == 0
                && created.json["unchanged"].int == 0, "\(created)")
        let again = try admin.call("POST", "/.cluster/pods", body)
        #expect(again.json["created"].int == 0 && again.json["unchanged"].int == 250 && again.json["replaced"].int == 0, "\(again)")

        // Paged on C (which learned them through the feed).
        let other = w.centers[2].admin()
        #expect(try eventually { try other.get("/.cluster/pods?limit=1").json["total"].int == 250 })
        var seen: [String] = []
        var sizes: [Int] = []
        var after: String?
        for _ in 0..<5 {
            let r = try other.get("/.cluster/pods?limit=100" + (after.map { "&after=\($0)" } ?? ""))
            try #require(r.status == 200, "\(r)")
            #expect(r.json["total"].int == 250, "\(r)")
            let page = r.json["pods"].array
            sizes.append(page.count)
            for p in page {
                let id = p["pod_id"].string ?? "?"
                seen.append(id)
                #expect(p["node_id"].string == ids.firstIndex(of: id).map(owner), "\(p)")
            }
            if r.json["next"].isNull { break }
            after = r.json["next"].string
            #expect(after == page.last?["pod_id"].string, "next is not the page's last id: \(r.json["next"])")
        }
        #expect(sizes == [100, 100, 50], "page sizes \(sizes)")
        #expect(seen == ids, "the pages do not list every pod once, in id order")
        for bad in ["limit=0", "limit=1001", "limit=x"] {
            #expect(try other.get("/.cluster/pods?\(bad)").status == 400, "\(bad)")
        }
        let one = try other.get("/.cluster/pods/p001")
        #expect(one.status == 200 && one.json["node_id"].string == "center-b" && one.json["owner"]["node_id"].string == "center-b", "\(one)")
        #expect(try other.get("/.cluster/pods/nobody").status == 404)

        // The counts per center, everywhere; and a few of them routed.
        for c in w.centers {
            var counts: [String: Int] = [:]
            let agreed = try eventually {
                let nodes = try c.admin().get("/.cluster/nodes").json["nodes"].array
                counts = Dictionary(uniqueKeysWithValues: nodes.compactMap { n in n["node_id"].string.map { ($0, n["pods"].int ?? -1) } })
                return counts == ["center-a": 84, "center-b": 83, "center-c": 83]
            }
            #expect(agreed, "\(c.name) counts \(counts)")
        }
        for (k, id) in ids.prefix(6).enumerated() {
            let via = w.centers[(k + 1) % 3]
            let r = try fetch(via.web(), "/\(id)/x")
            #expect(r.status == 200 && r.json["server"].string == CenterWorld.letters[k % 3], "\(id) via \(via.name): \(r)")
        }
        w.expectFeedApplied()
    }
}
