using System.Security.Cryptography;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Section 4: the same end-to-end channel through a relay, over direct TCP and through a plain CopyToAsync forwarder
/// (<see cref="RelayPaths"/>): throughput of bulk messages and the round-trip time of a small one.
/// </summary>
internal static class RelaySection
{
    public const string Title = "4. Relay: throughput and latency against direct TCP and a plain forwarder";

    private const int PingSize = 64;

    // Round trips per path before the measured rounds: connections, pools and JIT warm.
    private const int WarmUpRoundTrips = 200;

    private static readonly int[] Sizes = [65536, 1048576];

    private static readonly Goal OverForwarder = Goal.AtLeastTimes(0.9);
    private static readonly Goal AddedPerTraversal = Goal.AtMostMicroseconds(30);

    public static async Task RunAsync(CompareReport report, SideBySideSettings settings)
    {
        await using var peers = await RelayPeers.CreateAsync().ConfigureAwait(false);
        var paths = await RelayPaths.OpenAsync(peers).ConfigureAwait(false);
        await using (paths.ConfigureAwait(false))
        {
            ChannelPath[] compared = [paths.Direct, paths.Forwarded, paths.Relayed];
            await ThroughputAsync(report, settings, compared).ConfigureAwait(false);
            await LatencyAsync(report, settings, compared).ConfigureAwait(false);
        }

        report.Note(
            "One end-to-end SecureChannel between two agents per path, all in this process on TimeProvider.System (RelayPeers, relay settings",
            "as deployed except BytesPerSecondPerConnection = 0; agents' ends over " + LoopbackTcp.PipeDescription + "):",
            "direct = one loopback TCP connection; forwarder = the same through TcpForwarder",
            "(two Stream.CopyToAsync, no framing, no cryptography); relay = each agent's hop (TCP, hop channel, HELLO) to a relay in this",
            "process and a circuit between them, agents' default 256 KiB circuit window. The relay path seals and opens every byte three times",
            "(end to end, hop A, hop B) on the same 2 cores as the agents. Each path first checks that random messages arrive intact.");
    }

    private static async Task ThroughputAsync(CompareReport report, SideBySideSettings settings, ChannelPath[] paths)
    {
        var table = new MarkdownTable("size", "direct MB/s", "forwarder MB/s", "relay MB/s", "relay / direct", "relay / forwarder", "goal", "verdict");
        foreach (var size in Sizes)
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            foreach (var path in paths)
            {
                await ChannelTraffic.CheckDeliveryAsync(path.Initiator, path.Responder, size).ConfigureAwait(false);
            }

            var measured = await AlternatingRounds.MeasureAsync(settings, [.. paths.Select(p => new Contender(p.Name, count => ChannelTraffic.SendReceiveAsync(p.Initiator, p.Responder, payload, count)))], firstCount: 16).ConfigureAwait(false);
            var (direct, forwarded, relayed) = (measured[0].Rate * size / 1e6, measured[1].Rate * size / 1e6, measured[2].Rate * size / 1e6);
            var shown = Invariant($"{relayed / forwarded:F2}x");
            table.Row(FormatSize(size), Invariant($"{direct:F1}"), Invariant($"{forwarded:F1}"), Invariant($"{relayed:F1}"), Invariant($"{relayed / direct:F2}x"), shown, OverForwarder.Text, report.Judge(Invariant($"Relay, {FormatSize(size)} messages: relay / forwarder throughput"), OverForwarder, relayed / forwarded, shown));
        }

        report.Table(table);
    }

    private static async Task LatencyAsync(CompareReport report, SideBySideSettings settings, ChannelPath[] paths)
    {
        var payload = RandomNumberGenerator.GetBytes(PingSize);
        foreach (var path in paths)
        {
            await ChannelTraffic.RoundTripsAsync(path.Initiator, path.Responder, payload, WarmUpRoundTrips).ConfigureAwait(false);
        }

        var p50 = paths.Select(_ => new List<double>()).ToArray();
        var p99 = paths.Select(_ => new List<double>()).ToArray();
        for (var round = 0; round < settings.Rounds; round++)
        {
            foreach (var p in AlternatingRounds.Order(round, paths.Length))
            {
                var rtts = await ChannelTraffic.RoundTripsAsync(paths[p].Initiator, paths[p].Responder, payload, settings.RoundTripsPerRound).ConfigureAwait(false);
                p50[p].Add(Percentile(rtts, 0.5));
                p99[p].Add(Percentile(rtts, 0.99));
            }
        }

        var latency = new MarkdownTable(Invariant($"{PingSize} B round trip"), "p50 µs", "p99 µs");
        for (var p = 0; p < paths.Length; p++)
        {
            latency.Row(paths[p].Name, Invariant($"{Median(p50[p]):F1}"), Invariant($"{Median(p99[p]):F1}"));
        }

        report.Table(latency);

        var relay = Median(p50[2]);
        var added = new MarkdownTable("relay's added p50 latency", "per round trip", "per traversal", "goal", "verdict");
        foreach (var (baseline, name, judged) in new[] { (Median(p50[0]), "over direct TCP", true), (Median(p50[1]), "over the forwarder", false) })
        {
            var perTraversal = (relay - baseline) / 2;
            var shown = Invariant($"{perTraversal:F1} µs");
            added.Row(name, Invariant($"{relay - baseline:F1} µs"), shown, judged ? AddedPerTraversal.Text : "", judged ? report.Judge("Relay: added p50 latency per traversal over direct TCP", AddedPerTraversal, perTraversal, shown) : "");
        }

        report.Table(added);
        report.Note(
            Invariant($"Round trip: a {PingSize} B end-to-end message and its echo, timed by the initiator; {settings.RoundTripsPerRound} per path and round after {WarmUpRoundTrips} warm-up,"),
            "paths alternating; p50 and p99 are medians over the rounds of each round's percentile. A round trip crosses the relay twice, so",
            "the added latency per traversal is half the added round trip. Throughput: MB/s = 10^6 message bytes per second, median of the rounds.");
    }
}
