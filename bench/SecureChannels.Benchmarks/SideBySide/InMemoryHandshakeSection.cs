using System.Diagnostics;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Section 2: complete handshakes in memory, one at a time, ours and TLS 1.3, next to the bound set by the public-key
/// work alone, timed as bare libsodium calls in the same rounds.
/// </summary>
internal static class InMemoryHandshakeSection
{
    public const string Title = "2. Handshakes in memory, against the libsodium bound";

    // Ed25519 verifications per handshake, both sides together, between peers that have verified each other before: the
    // cache of verified identities, attestations and credentials keyed by hash (being added to src/Protocol) lets a
    // repeat peer through with none. The goal is judged against the bound with this many.
    private const int CachedVerifications = 0;

    // Ed25519 verifications per handshake, both sides together, between peers never seen: each side checks the other's
    // identity history (one change: 1), key attestation (1) and credential (issued directly by the trusted authority,
    // whose own history was verified once, when trusted: 1).
    private const int ColdVerifications = 6;

    private static readonly Goal BoundGoal = Goal.AtLeastPercent(75);

    public static async Task RunAsync(CompareReport report, SideBySideSettings settings)
    {
        using var peers = await ChannelPeers.CreateAsync().ConfigureAwait(false);
        using var tls = TlsPeers.Create();
        await CheckAsync(peers, tls).ConfigureAwait(false);
        var sodium = new SodiumPrimitives();

        var measured = await AlternatingRounds.MeasureAsync(settings,
        [
            new("SecureChannel", count => HandshakesAsync(count, () => ChannelHandshakeAsync(peers))),
            new("TLS", count => HandshakesAsync(count, () => TlsHandshakeAsync(tls))),
            Contender.Synchronous("keygen", sodium.KeyGen),
            Contender.Synchronous("X25519", sodium.Agree),
            Contender.Synchronous("verify", sodium.Verify),
        ]).ConfigureAwait(false);
        var (ours, theirs) = (measured[0].Rate, measured[1].Rate);
        var (keygen, agree, verify) = (1 / measured[2].Rate, 1 / measured[3].Rate, 1 / measured[4].Rate);

        // Per handshake, both sides together: one ephemeral key generation and three agreements (ee, es, se) each.
        double Bound(int verifications) => (2 * (keygen + (3 * agree))) + (verifications * verify);

        var table = new MarkdownTable("handshake, both sides, one at a time", "per second", "time each", "ours / this", "goal", "verdict");
        table.Row("SecureChannel", Invariant($"{ours:N0}"), Duration(1 / ours), "", "", "");
        table.Row("TLS 1.3 mutual (SslStream)", Invariant($"{theirs:N0}"), Duration(1 / theirs), Invariant($"{ours / theirs:F2}x"), "", "");
        var cached = Bound(CachedVerifications);
        var share = 100 * ours * cached;
        var shown = Invariant($"{share:F0} %");
        table.Row(Invariant($"bound, {CachedVerifications} uncached verifications (repeat peers, verification cache)"), Invariant($"{1 / cached:N0}"), Duration(cached), shown, BoundGoal.Text, report.Judge("In-memory handshake: ours / libsodium bound (repeat peers)", BoundGoal, share, shown));
        var cold = Bound(ColdVerifications);
        table.Row(Invariant($"bound, {ColdVerifications} verifications (cold peers)"), Invariant($"{1 / cold:N0}"), Duration(cold), Invariant($"{100 * ours * cold:F0} %"), "", "");
        report.Table(table);
        report.Note(
            Invariant($"libsodium, called directly (no NSec key objects), medians of the same rounds: keygen (randombytes 32 B + crypto_scalarmult_curve25519_base) {Duration(keygen)}, X25519 (crypto_scalarmult_curve25519) {Duration(agree)}, Ed25519 verify (crypto_sign_ed25519_verify_detached, {SodiumPrimitives.SignedLength} B message) {Duration(verify)}."),
            "Bound = 2 x (keygen + 3 x X25519) + verifications x verify: the public-key work of one XX handshake (each side one ephemeral key and",
            Invariant($"three DHs: ee, es, se) plus the signatures checked. A cold handshake verifies {ColdVerifications} signatures (each side: the peer's one-change identity history,"),
            "key attestation and credential); with the verification cache a repeat peer needs none, and the goal is judged against that bound.",
            "Handshakes: ChannelPeers.OpenAsync / TlsPeers.ConnectAsync over a fresh InMemoryConnection (crossed System.IO.Pipelines pipes), then",
            "both ends disposed; one after another, so time each is the latency of both parties' work (hand-offs between them included).");
    }

    /// <summary>One handshake of each, checked, before anything is timed.</summary>
    private static async Task CheckAsync(ChannelPeers peers, TlsPeers tls)
    {
        var (initiator, responder) = await peers.OpenAsync().ConfigureAwait(false);
        await using (initiator.ConfigureAwait(false))
        await using (responder.ConfigureAwait(false))
        {
            peers.EnsurePaired(initiator, responder);
            await ChannelTraffic.CheckDeliveryAsync(initiator, responder, 64).ConfigureAwait(false);
        }

        var (client, server) = await tls.ConnectAsync().ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        await using (server.ConfigureAwait(false))
        {
            TlsPeers.EnsureMutualTls13(client);
            TlsPeers.EnsureMutualTls13(server);
            await FramedStreamTraffic.CheckDeliveryAsync(client, server, 64).ConfigureAwait(false);
        }
    }

    private static async Task<TimeSpan> HandshakesAsync(long count, Func<Task> handshake)
    {
        var started = Stopwatch.GetTimestamp();
        for (long i = 0; i < count; i++)
        {
            await handshake().ConfigureAwait(false);
        }

        return Stopwatch.GetElapsedTime(started);
    }

    private static async Task ChannelHandshakeAsync(ChannelPeers peers)
    {
        var (initiator, responder) = await peers.OpenAsync().ConfigureAwait(false);
        var peer = initiator.Peer.Identifier;
        await initiator.DisposeAsync().ConfigureAwait(false);
        await responder.DisposeAsync().ConfigureAwait(false);
        if (peer != peers.Responder.Identity.Identifier)
        {
            throw new InvalidOperationException($"The channel reached {peer} instead of the responder.");
        }
    }

    private static async Task TlsHandshakeAsync(TlsPeers tls)
    {
        var (client, server) = await tls.ConnectAsync().ConfigureAwait(false);
        var mutual = client.IsMutuallyAuthenticated && server.IsMutuallyAuthenticated;
        await client.DisposeAsync().ConfigureAwait(false);
        await server.DisposeAsync().ConfigureAwait(false);
        if (!mutual)
        {
            throw new InvalidOperationException("A TLS handshake was not mutually authenticated.");
        }
    }

    private static string Duration(double seconds) => seconds < 1e-3 ? Invariant($"{seconds * 1e6:F1} µs") : Invariant($"{seconds * 1e3:F2} ms");
}
