using System.Diagnostics;
using SecureChannels.Protocol.Circuits;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The relay's memory per idle hop and per idle circuit, from a relay alone in a child process
/// (<see cref="RelayHostProcess"/>) so its memory is its own; the agents stay in this process. Measured: the relay with
/// no hop; after <see cref="Hops"/> agents each opened one listening hop; after a number of circuits from one agent to
/// another, each with an end on two hops.
/// </summary>
internal static class RelayMemory
{
    public const int Hops = 200;

    /// <summary>Circuit OPENs in flight at once while the circuits are made.</summary>
    public const int OpenBatch = 50;

    /// <summary>What runs in between, on the relay with its hops up and before the circuits open: the first two agents and their links.</summary>
    public delegate Task Interlude(RelayPeers peers, RelayHostProcess host, (RelayPeers.Agent Agent, RelayLink Link) opener, (RelayPeers.Agent Agent, RelayLink Link) target);

    /// <summary>Opens the hops, runs <paramref name="interlude"/>, opens <paramref name="circuits"/> circuits; the child's samples go to <paramref name="log"/> as they come.</summary>
    public static async Task<Result> MeasureAsync(TextWriter log, int circuits, Interlude? interlude = null)
    {
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Relay:MaxCircuitsPerConnection"] = Invariant($"{circuits}"),
            // That many idle circuits reserve as many windows on one hop; the budget is lifted so memory, not the cap, is measured.
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
            await log.WriteLineAsync($"Relay started, no hop:        {empty}").ConfigureAwait(false);

            var links = new RelayLink[Hops];
            for (var i = 0; i < Hops; i += 20)
            {
                var batch = Enumerable.Range(i, Math.Min(20, Hops - i)).Select(async j => links[j] = await peers.LinkAsync(agents[j], host.EndPoint, host.Identifier, listen: true).ConfigureAwait(false));
                await Task.WhenAll(batch).ConfigureAwait(false);
            }

            var withHops = await host.MemoryAsync().ConfigureAwait(false);
            await log.WriteLineAsync(Invariant($"{Hops} idle hops (listening):  {withHops}")).ConfigureAwait(false);
            Expect(withHops, Hops, 0);

            if (interlude is not null)
            {
                await interlude(peers, host, (agents[0], links[0]), (agents[1], links[1])).ConfigureAwait(false);
            }

            var beforeCircuits = await host.MemoryAsync().ConfigureAwait(false);
            await log.WriteLineAsync($"Before the circuits:          {beforeCircuits}").ConfigureAwait(false);
            var agentBefore = AgentSideMemory();
            var openStarted = Stopwatch.GetTimestamp();
            var opened = await OpenCircuitsAsync(links[0], links[1], agents[1], circuits).ConfigureAwait(false);
            var openTime = Stopwatch.GetElapsedTime(openStarted);
            var agentAfter = AgentSideMemory();
            var withCircuits = await host.MemoryAsync().ConfigureAwait(false);
            await log.WriteLineAsync(Invariant($"{circuits} idle circuits:       {withCircuits}")).ConfigureAwait(false);
            Expect(withCircuits, Hops, 2L * circuits);

            await Task.WhenAll(opened.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
            return new Result(empty, withHops, beforeCircuits, withCircuits, circuits, openTime, (double)(agentAfter - agentBefore) / circuits);
        }
    }

    /// <summary>The relay must hold what was opened, or the memory difference means nothing.</summary>
    private static void Expect(RelayHostProcess.MemorySample sample, long hops, long circuitEnds)
    {
        if (sample.Hops != hops || sample.CircuitEnds != circuitEnds)
        {
            throw new InvalidOperationException(Invariant($"The relay holds {sample.Hops} hops and {sample.CircuitEnds} circuit ends, not {hops} and {circuitEnds}."));
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

    /// <summary>The relay process's samples, and the agents' side of the same circuits (this process) per circuit.</summary>
    internal sealed record Result(
        RelayHostProcess.MemorySample Empty,
        RelayHostProcess.MemorySample WithHops,
        RelayHostProcess.MemorySample BeforeCircuits,
        RelayHostProcess.MemorySample WithCircuits,
        int Circuits,
        TimeSpan OpenTime,
        double AgentSidePerCircuit)
    {
        /// <summary>Circuits OPENed per second, <see cref="OpenBatch"/> in flight, one accept loop.</summary>
        public double OpenRate => Circuits / OpenTime.TotalSeconds;

        public Cost PerHop => Cost.Between(Empty, WithHops, Hops);

        public Cost PerCircuit => Cost.Between(BeforeCircuits, WithCircuits, Circuits);
    }

    /// <summary>Bytes per item: managed (GC.GetTotalMemory after full collections), GC heap size, working set (native included, indicative only).</summary>
    internal readonly record struct Cost(double Managed, double HeapSize, double WorkingSet)
    {
        public static Cost Between(RelayHostProcess.MemorySample before, RelayHostProcess.MemorySample after, int items) => new(
            (double)(after.Managed - before.Managed) / items,
            (double)(after.HeapSize - before.HeapSize) / items,
            (double)(after.WorkingSet - before.WorkingSet) / items);
    }
}
