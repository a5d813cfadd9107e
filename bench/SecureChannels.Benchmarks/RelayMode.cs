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
    private const int Circuits = 10_000;

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
            var paths = await RelayPaths.OpenAsync(peers).ConfigureAwait(false);
            await using (paths.ConfigureAwait(false))
            {
                await ThroughputAsync(output, [paths.Direct, paths.Forwarded, paths.Relayed, paths.WideRelayed]).ConfigureAwait(false);
                output.WriteLine();
                await LatencyAsync(output, [paths.Direct, paths.Forwarded, paths.Relayed]).ConfigureAwait(false);
                output.WriteLine();
            }
        }

        await MemoryAsync(output).ConfigureAwait(false);
        output.WriteLine();
        output.WriteLine(Invariant($"Load average after: {LoadAverage()}; {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s in all."));
        return 0;
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
                    var elapsed = await ChannelTraffic.SendReceiveAsync(paths[p].Initiator, paths[p].Responder, payload, messages).ConfigureAwait(false);
                    if (round >= 0)
                    {
                        results[p].Add((double)messages * size / 1048576 / elapsed.TotalSeconds);
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

    private static async Task LatencyAsync(TextWriter output, ChannelPath[] paths)
    {
        var payload = RandomNumberGenerator.GetBytes(PingSize);
        var samples = paths.Select(_ => new List<double>()).ToArray();
        for (var block = -1; block < LatencyBlocks; block++)
        {
            for (var p = 0; p < paths.Length; p++)
            {
                var rtts = await ChannelTraffic.RoundTripsAsync(paths[p].Initiator, paths[p].Responder, payload, block < 0 ? 200 : RoundTripsPerBlock).ConfigureAwait(false);
                if (block >= 0)
                {
                    samples[p].AddRange(rtts);
                }
            }
        }

        output.WriteLine(Invariant($"--- Round trip: {PingSize} B end-to-end message and its echo, {LatencyBlocks * RoundTripsPerBlock} round trips per path (blocks of {RoundTripsPerBlock} alternating paths, after 200 warm-up each), microseconds ---"));
        output.WriteLine(Invariant($"{"path",-10} {"median",9} {"p90",9} {"p99",9} {"mean",9} {"median/direct",14} {"p99/direct",11} {"median/fwd",11} {"p99/fwd",9}"));
        var stats = samples.Select(s => (Median: Median(s), P90: Percentile(s, 0.9), P99: Percentile(s, 0.99), Mean: s.Average())).ToArray();
        for (var p = 0; p < paths.Length; p++)
        {
            var s = stats[p];
            output.WriteLine(Invariant($"{paths[p].Name,-10} {s.Median,9:F1} {s.P90,9:F1} {s.P99,9:F1} {s.Mean,9:F1} {s.Median / stats[0].Median,14:F2} {s.P99 / stats[0].P99,11:F2} {s.Median / stats[1].Median,11:F2} {s.P99 / stats[1].P99,9:F2}"));
        }

        output.WriteLine(Invariant($"Added by the relay (median): {stats[2].Median - stats[0].Median:F1} us over direct TCP, {stats[2].Median - stats[1].Median:F1} us over the plain forwarder, per round trip (two traversals)."));
    }

    private static async Task MemoryAsync(TextWriter output)
    {
        output.WriteLine(Invariant($"--- Relay memory and allocations: the relay alone in a child process ({RelayHostProcess.Switch}), agents in this one ---"));
        var result = await RelayMemory.MeasureAsync(output, Circuits, (peers, host, opener, target) => ForwardingAllocationsAsync(output, peers, host, opener, target)).ConfigureAwait(false);
        output.WriteLine(Invariant($"(opened in {result.OpenTime.TotalSeconds:F2} s: {result.OpenRate:F0} circuits/s, {RelayMemory.OpenBatch} OPENs in flight, one accept loop)"));
        output.WriteLine();

        var (perHop, perCircuit) = (result.PerHop, result.PerCircuit);
        output.WriteLine(Invariant($"{"relay process, per",-34} {"managed (GC.GetTotalMemory(true))",34} {"GC heap size",14} {"working set",12}"));
        output.WriteLine(Invariant($"{"idle hop (TCP + channel + HELLO)",-34} {FormatBytes(perHop.Managed),34} {FormatBytes(perHop.HeapSize),14} {FormatBytes(perHop.WorkingSet),12}"));
        output.WriteLine(Invariant($"{"idle circuit (ends on two hops)",-34} {FormatBytes(perCircuit.Managed),34} {FormatBytes(perCircuit.HeapSize),14} {FormatBytes(perCircuit.WorkingSet),12}"));
        output.WriteLine(Invariant($"Agent side, for comparison (this process, both Circuit ends of each circuit, GC.GetTotalMemory(true)): {FormatBytes(result.AgentSidePerCircuit)} per circuit."));
        output.WriteLine("Working set includes native memory (socket buffers, libsodium guarded pages) and moves with the GC's page use: indicative only.");
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
        var message = RandomNumberGenerator.GetBytes(65536);
        await ChannelTraffic.SendReceiveAsync(channels.Initiator, channels.Responder, message, 200).ConfigureAwait(false);
        before = await host.StatsAsync().ConfigureAwait(false);
        var elapsed = await ChannelTraffic.SendReceiveAsync(channels.Initiator, channels.Responder, message, 2000).ConfigureAwait(false);
        after = await host.StatsAsync().ConfigureAwait(false);
        PrintAllocations(output, Invariant($"64 KiB end-to-end messages, one way (2,000; {2000 * 65536 / 1048576.0 / elapsed.TotalSeconds:F0} MiB/s)"), before, after);
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
}
