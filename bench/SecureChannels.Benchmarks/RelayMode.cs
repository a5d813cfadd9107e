using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Security.Cryptography;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks;

/// <summary>
/// <c>--relay</c>: the relay next to its baselines, in one run, all on loopback TCP. The same end-to-end secure
/// channel between two agents runs over a direct TCP connection, through a plain TCP forwarder (two CopyToAsync),
/// and through a relay (hops, circuits); throughput per message size and small-message round-trip time, with
/// ratios. Then a relay in a process of its own (<see cref="RelayHostProcess"/>): managed memory per hop and per
/// idle circuit, and what it allocates per forwarded DATA frame.
/// </summary>
internal static class RelayMode
{
    public const string Switch = "--relay";

    private const int ThroughputRounds = 5;
    private const int LatencyBlocks = 4;
    private const int RoundTripsPerBlock = 500;
    private const int PingSize = 64;
    private const int Hops = 200;
    private const int Circuits = 10_000;
    private const int OpenBatch = 50;

    private static readonly int[] Sizes = [1024, 65536, 1048576];

    public static int Run() => RunAsync().GetAwaiter().GetResult();

    private static async Task<int> RunAsync()
    {
        var output = Console.Out;
        var started = Stopwatch.GetTimestamp();
        output.WriteLine("=== SecureChannels --relay ===");
        output.WriteLine(Invariant($"Machine: {Environment.ProcessorCount} logical cores; load average before: {LoadAverage()}; GC: {(GCSettings.IsServerGC ? "server" : "workstation")}, concurrent {GCSettings.LatencyMode != GCLatencyMode.Batch}."));
        output.WriteLine("Agents, relay and forwarder in this process on TimeProvider.System; relay settings as deployed except BytesPerSecondPerConnection = 0 (unthrottled).");
        output.WriteLine();

        await using (var peers = await RelayPeers.CreateAsync().ConfigureAwait(false))
        {
            var a = await peers.CreateAgentAsync().ConfigureAwait(false);
            var b = await peers.CreateAgentAsync().ConfigureAwait(false);
            var (paths, forwarder) = await OpenPathsAsync(peers, a, b).ConfigureAwait(false);
            await using (forwarder.ConfigureAwait(false))
            {
                await ThroughputAsync(output, paths).ConfigureAwait(false);
                output.WriteLine();
                await LatencyAsync(output, paths).ConfigureAwait(false);
                output.WriteLine();
            }
        }

        await MemoryAsync(output).ConfigureAwait(false);
        output.WriteLine();
        output.WriteLine(Invariant($"Load average after: {LoadAverage()}; {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s in all."));
        return 0;
    }

    private static async Task<(ChannelPath[] Paths, TcpForwarder Forwarder)> OpenPathsAsync(RelayPeers peers, RelayPeers.Agent a, RelayPeers.Agent b)
    {
        var (directClient, directServer, _) = await LoopbackTcp.PairAsync(throughForwarder: false).ConfigureAwait(false);
        var direct = await peers.ChannelAsync(a, LoopbackTcp.Pipe(directClient), b, LoopbackTcp.Pipe(directServer)).ConfigureAwait(false);

        var (forwardedClient, forwardedServer, forwarder) = await LoopbackTcp.PairAsync(throughForwarder: true).ConfigureAwait(false);
        var forwarded = await peers.ChannelAsync(a, LoopbackTcp.Pipe(forwardedClient), b, LoopbackTcp.Pipe(forwardedServer)).ConfigureAwait(false);

        var relay = await peers.StartRelayAsync().ConfigureAwait(false);
        var linkA = await peers.LinkAsync(a, relay.HopEndPoint!, relay.Identifier, listen: false).ConfigureAwait(false);
        var linkB = await peers.LinkAsync(b, relay.HopEndPoint!, relay.Identifier, listen: true).ConfigureAwait(false);
        var (opened, accepted) = await RelayPeers.CircuitAsync(linkA, linkB, b).ConfigureAwait(false);
        var relayed = await peers.ChannelAsync(a, opened, b, accepted).ConfigureAwait(false);

        // The same through the same relay with both agents announcing the relay's largest circuit window (1 MiB); to a
        // third agent, as a second listening hop of B would take B's address (newest wins) and reset the circuit above.
        var c = await peers.CreateAgentAsync().ConfigureAwait(false);
        var wideA = await peers.LinkAsync(a, relay.HopEndPoint!, relay.Identifier, listen: false, window: 1 << 20).ConfigureAwait(false);
        var wideC = await peers.LinkAsync(c, relay.HopEndPoint!, relay.Identifier, listen: true, window: 1 << 20).ConfigureAwait(false);
        (opened, accepted) = await RelayPeers.CircuitAsync(wideA, wideC, c).ConfigureAwait(false);
        var wide = await peers.ChannelAsync(a, opened, c, accepted).ConfigureAwait(false);

        return ([new("direct", direct.Initiator, direct.Responder), new("forwarder", forwarded.Initiator, forwarded.Responder), new("relay", relayed.Initiator, relayed.Responder), new("relay-1MiB", wide.Initiator, wide.Responder)], forwarder!);
    }

    private static async Task ThroughputAsync(TextWriter output, ChannelPath[] paths)
    {
        output.WriteLine(Invariant($"--- Throughput: end-to-end SecureChannel, one sender, one receiver, pipelined; median of {ThroughputRounds} rounds (after one warm-up round), MiB/s = 2^20 message bytes / s ---"));
        output.WriteLine(Invariant($"{"size",-8} {"msgs/round",10} {"direct",10} {"forwarder",10} {"relay",10} {"relay/direct",13} {"relay/fwd",10} {"fwd/direct",11} {"relay-1MiB",11} {"CPU ms/MiB: direct",19} {"fwd",6} {"relay",6}"));
        foreach (var size in Sizes)
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            var count = (int)Math.Max(16, (size < 65536 ? 8L << 20 : 64L << 20) / size);
            var results = paths.Select(_ => new List<double>()).ToArray();
            var cpu = paths.Select(_ => new List<double>()).ToArray();
            for (var round = -1; round < ThroughputRounds; round++)
            {
                for (var p = 0; p < paths.Length; p++)
                {
                    var messages = round < 0 ? Math.Max(16, count / 4) : count;
                    var cpuBefore = Environment.CpuUsage.TotalTime;
                    var rate = await SendReceiveAsync(paths[p], payload, messages).ConfigureAwait(false);
                    if (round >= 0)
                    {
                        results[p].Add(rate);
                        cpu[p].Add((Environment.CpuUsage.TotalTime - cpuBefore).TotalMilliseconds / ((double)messages * size / 1048576));
                    }
                }
            }

            var (direct, forwarded, relayed) = (Median(results[0]), Median(results[1]), Median(results[2]));
            output.WriteLine(Invariant($"{FormatSize(size),-8} {count,10} {direct,10:F1} {forwarded,10:F1} {relayed,10:F1} {relayed / direct,13:F2} {relayed / forwarded,10:F2} {forwarded / direct,11:F2} {Median(results[3]),11:F1} {Median(cpu[0]),19:F2} {Median(cpu[1]),6:F2} {Median(cpu[2]),6:F2}"));
        }

        output.WriteLine("Ratios are of throughputs: below 1.00 the relay is slower. Rounds of a size alternate the paths. relay-1MiB: both agents' circuit window at the");
        output.WriteLine("relay's MaxCircuitWindow (1 MiB) instead of the 256 KiB default. CPU ms/MiB: this process's CPU time (all threads: agents, relay, forwarder) per MiB moved.");
    }

    private static async Task<double> SendReceiveAsync(ChannelPath path, byte[] payload, int count)
    {
        var started = Stopwatch.GetTimestamp();
        var receiving = Task.Run(async () =>
        {
            long received = 0;
            for (var i = 0; i < count; i++)
            {
                using var message = await path.Responder.ReceiveAsync().ConfigureAwait(false) ?? throw new InvalidOperationException($"The {path.Name} channel closed.");
                received += message.Payload.Length;
            }

            return received;
        });
        for (var i = 0; i < count; i++)
        {
            await path.Initiator.SendAsync(payload).ConfigureAwait(false);
        }

        var total = await receiving.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        return total / 1048576.0 / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static async Task LatencyAsync(TextWriter output, ChannelPath[] paths)
    {
        var payload = RandomNumberGenerator.GetBytes(PingSize);
        paths = paths[..3];
        var samples = paths.Select(_ => new List<double>()).ToArray();
        for (var block = -1; block < LatencyBlocks; block++)
        {
            for (var p = 0; p < paths.Length; p++)
            {
                var rtts = await RoundTripsAsync(paths[p], payload, block < 0 ? 200 : RoundTripsPerBlock).ConfigureAwait(false);
                if (block >= 0)
                {
                    samples[p].AddRange(rtts);
                }
            }
        }

        output.WriteLine(Invariant($"--- Round trip: {PingSize} B end-to-end message and its echo, {LatencyBlocks * RoundTripsPerBlock} round trips per path (blocks of {RoundTripsPerBlock} alternating paths, after 200 warm-up each), microseconds ---"));
        output.WriteLine(Invariant($"{"path",-10} {"median",9} {"p90",9} {"p99",9} {"mean",9} {"median/direct",14} {"p99/direct",11} {"median/fwd",11} {"p99/fwd",9}"));
        var stats = samples.Select(s => (Median: Percentile(s, 0.5), P90: Percentile(s, 0.9), P99: Percentile(s, 0.99), Mean: s.Average())).ToArray();
        for (var p = 0; p < paths.Length; p++)
        {
            var s = stats[p];
            output.WriteLine(Invariant($"{paths[p].Name,-10} {s.Median,9:F1} {s.P90,9:F1} {s.P99,9:F1} {s.Mean,9:F1} {s.Median / stats[0].Median,14:F2} {s.P99 / stats[0].P99,11:F2} {s.Median / stats[1].Median,11:F2} {s.P99 / stats[1].P99,9:F2}"));
        }

        output.WriteLine(Invariant($"Added by the relay (median): {stats[2].Median - stats[0].Median:F1} us over direct TCP, {stats[2].Median - stats[1].Median:F1} us over the plain forwarder, per round trip (two traversals)."));
    }

    private static async Task<double[]> RoundTripsAsync(ChannelPath path, byte[] payload, int count)
    {
        var echo = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
            {
                using var message = await path.Responder.ReceiveAsync().ConfigureAwait(false) ?? throw new InvalidOperationException($"The {path.Name} channel closed.");
                await path.Responder.SendAsync(message.Payload).ConfigureAwait(false);
            }
        });
        var rtts = new double[count];
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await path.Initiator.SendAsync(payload).ConfigureAwait(false);
            using var reply = await path.Initiator.ReceiveAsync().ConfigureAwait(false) ?? throw new InvalidOperationException($"The {path.Name} channel closed.");
            rtts[i] = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        }

        await echo.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        return rtts;
    }

    private static async Task MemoryAsync(TextWriter output)
    {
        output.WriteLine(Invariant($"--- Relay memory and allocations: the relay alone in a child process ({RelayHostProcess.Switch}), agents in this one ---"));
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Relay:MaxCircuitsPerConnection"] = Invariant($"{Circuits}"),
            // 10,000 idle circuits reserve 10,000 windows on one hop; the budget is lifted so memory, not the cap, is measured.
            ["Relay:MaxQueuedBytesPerConnection"] = Invariant($"{1L << 42}"),
            ["Relay:MaxConnectionsPerAddress"] = Invariant($"{Hops * 2}"),
        };
        await using var peers = await RelayPeers.CreateAsync().ConfigureAwait(false);
        var host = await RelayHostProcess.StartAsync(peers.Authority, settings).ConfigureAwait(false);
        await using (host.ConfigureAwait(false))
        {
            var agents = new RelayPeers.Agent[Hops];
            for (var i = 0; i < Hops; i++)
            {
                agents[i] = await peers.CreateAgentAsync().ConfigureAwait(false);
            }

            var empty = await host.MemoryAsync().ConfigureAwait(false);
            output.WriteLine($"Relay started, no hop:        {empty}");

            var links = new RelayLink[Hops];
            for (var i = 0; i < Hops; i += 20)
            {
                var batch = Enumerable.Range(i, Math.Min(20, Hops - i)).Select(async j => links[j] = await peers.LinkAsync(agents[j], host.EndPoint, host.Identifier, listen: true).ConfigureAwait(false));
                await Task.WhenAll(batch).ConfigureAwait(false);
            }

            var withHops = await host.MemoryAsync().ConfigureAwait(false);
            output.WriteLine(Invariant($"{Hops} idle hops (listening):  {withHops}"));

            await ForwardingAllocationsAsync(output, peers, host, (agents[0], links[0]), (agents[1], links[1])).ConfigureAwait(false);

            var beforeCircuits = await host.MemoryAsync().ConfigureAwait(false);
            output.WriteLine($"Before the circuits:          {beforeCircuits}");
            var agentBefore = AgentSideMemory();
            var openStarted = Stopwatch.GetTimestamp();
            var circuits = await OpenCircuitsAsync(links[0], links[1], agents[1], Circuits).ConfigureAwait(false);
            var openTime = Stopwatch.GetElapsedTime(openStarted);
            var agentAfter = AgentSideMemory();
            var withCircuits = await host.MemoryAsync().ConfigureAwait(false);
            output.WriteLine(Invariant($"{Circuits} idle circuits:       {withCircuits}"));
            output.WriteLine(Invariant($"(opened in {openTime.TotalSeconds:F2} s: {Circuits / openTime.TotalSeconds:F0} circuits/s, {OpenBatch} OPENs in flight, one accept loop)"));
            output.WriteLine();

            var perHop = (double)(withHops.Managed - empty.Managed) / Hops;
            var perHopWs = (double)(withHops.WorkingSet - empty.WorkingSet) / Hops;
            var perCircuit = (double)(withCircuits.Managed - beforeCircuits.Managed) / Circuits;
            var perCircuitWs = (double)(withCircuits.WorkingSet - beforeCircuits.WorkingSet) / Circuits;
            output.WriteLine(Invariant($"{"relay process, per",-34} {"managed (GC.GetTotalMemory(true))",34} {"GC heap size",14} {"working set",12}"));
            output.WriteLine(Invariant($"{"idle hop (TCP + channel + HELLO)",-34} {FormatBytes(perHop),34} {FormatBytes((double)(withHops.HeapSize - empty.HeapSize) / Hops),14} {FormatBytes(perHopWs),12}"));
            output.WriteLine(Invariant($"{"idle circuit (ends on two hops)",-34} {FormatBytes(perCircuit),34} {FormatBytes((double)(withCircuits.HeapSize - beforeCircuits.HeapSize) / Circuits),14} {FormatBytes(perCircuitWs),12}"));
            output.WriteLine(Invariant($"Agent side, for comparison (this process, both Circuit ends of each circuit, GC.GetTotalMemory(true)): {FormatBytes((double)(agentAfter - agentBefore) / Circuits)} per circuit."));
            output.WriteLine("Working set includes native memory (socket buffers, libsodium guarded pages) and moves with the GC's page use: indicative only.");

            await Task.WhenAll(circuits.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        }
    }

    private static long AgentSideMemory()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static async Task<List<Circuit>> OpenCircuitsAsync(RelayLink from, RelayLink to, RelayPeers.Agent target, int count)
    {
        var all = new List<Circuit>(2 * count);
        var accepting = Task.Run(async () =>
        {
            var accepted = new List<Circuit>(count);
            for (var i = 0; i < count; i++)
            {
                var incoming = await to.AcceptCircuitAsync().ConfigureAwait(false);
                accepted.Add(await incoming.AcceptAsync().ConfigureAwait(false));
            }

            return accepted;
        });
        var address = target.Identity.Identifier.ToString();
        for (var i = 0; i < count; i += OpenBatch)
        {
            all.AddRange(await Task.WhenAll(Enumerable.Range(0, Math.Min(OpenBatch, count - i)).Select(_ => from.OpenCircuitAsync(address))).WaitAsync(RelayPeers.Guard).ConfigureAwait(false));
        }

        all.AddRange(await accepting.WaitAsync(RelayPeers.Guard).ConfigureAwait(false));
        return all;
    }

    /// <summary>The relay process's allocations per forwarded DATA frame: 1 KiB frames echoed on a bare circuit, then 64 KiB end-to-end messages.</summary>
    private static async Task ForwardingAllocationsAsync(TextWriter output, RelayPeers peers, RelayHostProcess host, (RelayPeers.Agent Agent, RelayLink Link) opener, (RelayPeers.Agent Agent, RelayLink Link) target)
    {
        var (a, linkA) = opener;
        var (b, linkB) = target;
        output.WriteLine();
        output.WriteLine("Relay allocations (child process, GC.GetTotalAllocatedBytes(precise) of all its threads; DATA frames and bytes from its securechannels.relay meter):");
        output.WriteLine(Invariant($"{"traffic",-52} {"DATA frames",11} {"B/frame",9} {"B/KiB fwd",10}"));

        var (opened, accepted) = await RelayPeers.CircuitAsync(linkA, linkB, b).ConfigureAwait(false);
        var echo = Task.Run(() => EchoAsync(accepted));
        var frame = RandomNumberGenerator.GetBytes(1024);
        await CircuitRoundTripsAsync(opened, frame, 2000).ConfigureAwait(false);
        var before = await host.StatsAsync().ConfigureAwait(false);
        await CircuitRoundTripsAsync(opened, frame, 20_000).ConfigureAwait(false);
        var after = await host.StatsAsync().ConfigureAwait(false);
        PrintAllocations(output, "1 KiB DATA echoed on a bare circuit (20,000 x 2)", before, after);
        await opened.Output.CompleteAsync().ConfigureAwait(false);
        await echo.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        await opened.DisposeAsync().ConfigureAwait(false);
        await accepted.DisposeAsync().ConfigureAwait(false);

        (opened, accepted) = await RelayPeers.CircuitAsync(linkA, linkB, b).ConfigureAwait(false);
        var channels = await peers.ChannelAsync(a, opened, b, accepted).ConfigureAwait(false);
        var path = new ChannelPath("relay", channels.Initiator, channels.Responder);
        var message = RandomNumberGenerator.GetBytes(65536);
        await SendReceiveAsync(path, message, 200).ConfigureAwait(false);
        before = await host.StatsAsync().ConfigureAwait(false);
        var rate = await SendReceiveAsync(path, message, 2000).ConfigureAwait(false);
        after = await host.StatsAsync().ConfigureAwait(false);
        PrintAllocations(output, Invariant($"64 KiB end-to-end messages, one way (2,000; {rate:F0} MiB/s)"), before, after);
        await channels.Initiator.DisposeAsync().ConfigureAwait(false);
        await channels.Responder.DisposeAsync().ConfigureAwait(false);
        await opened.DisposeAsync().ConfigureAwait(false);
        await accepted.DisposeAsync().ConfigureAwait(false);
        output.WriteLine("Everything the relay process allocated counts, CREDIT frames, keepalives and timers included, divided by DATA frames.");
        output.WriteLine();
    }

    private static void PrintAllocations(TextWriter output, string what, RelayHostProcess.ForwardingSample before, RelayHostProcess.ForwardingSample after)
    {
        var frames = after.Frames - before.Frames;
        var allocated = after.Allocated - before.Allocated;
        var bytes = after.Bytes - before.Bytes;
        output.WriteLine(Invariant($"{what,-52} {frames,11:N0} {(double)allocated / frames,9:F0} {allocated / (bytes / 1024.0),10:F1}"));
    }

    /// <summary>Echoes whatever arrives on <paramref name="circuit"/> until the peer's CLOSE.</summary>
    internal static async Task EchoAsync(Circuit circuit)
    {
        while (true)
        {
            var result = await circuit.Input.ReadAsync().ConfigureAwait(false);
            foreach (var segment in result.Buffer)
            {
                await circuit.Output.WriteAsync(segment).ConfigureAwait(false);
            }

            circuit.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                await circuit.Output.CompleteAsync().ConfigureAwait(false);
                return;
            }
        }
    }

    /// <summary>Writes <paramref name="frame"/> (one DATA frame) and reads its echo, <paramref name="count"/> times.</summary>
    internal static async Task CircuitRoundTripsAsync(Circuit circuit, byte[] frame, int count)
    {
        for (var i = 0; i < count; i++)
        {
            await circuit.Output.WriteAsync(frame).ConfigureAwait(false);
            var expected = frame.Length;
            while (expected > 0)
            {
                var result = await circuit.Input.ReadAsync().ConfigureAwait(false);
                var take = Math.Min(expected, result.Buffer.Length);
                circuit.Input.AdvanceTo(result.Buffer.GetPosition(take));
                expected -= (int)take;
                if (result.IsCompleted && expected > 0)
                {
                    throw new InvalidOperationException("The circuit closed.");
                }
            }
        }
    }

    private static double Median(List<double> values) => Percentile(values, 0.5);

    private static double Percentile(List<double> values, double quantile) => BenchText.Quantile([.. values.Order()], quantile);

    private static string FormatSize(int size) => size >= 1048576 ? Invariant($"{size >> 20} MiB") : Invariant($"{size >> 10} KiB");

    private static string FormatBytes(double bytes) => Invariant($"{bytes:N0} B");


    private sealed record ChannelPath(string Name, SecureChannel Initiator, SecureChannel Responder);
}
