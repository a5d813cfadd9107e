using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SecureChannels.Client;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Hosting;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.Soak;

/// <summary>
/// One soak run: a relay in this process on a loopback port chosen once, <see cref="SoakOptions.Agents"/> agents in
/// opener/acceptor pairs exchanging numbered messages through it for <see cref="SoakOptions.Duration"/>, the relay and
/// some agents killed and restarted on a seeded schedule, then everything closed and checked: every message accounted
/// for, the relay's circuit table empty, memory back near its baseline. Real clock throughout: it is a load test.
/// </summary>
internal sealed class SoakRun
{
    private readonly SoakOptions _options;
    private readonly TextWriter _log;
    private readonly SoakLedger _ledger = new();
    private readonly List<IDisposable> _owned = [];
    private readonly MemoryPeaks _peaks = new();
    private string? _hung;

    private SoakRun(SoakOptions options, TextWriter log)
    {
        _options = options;
        _log = log;
    }

    /// <summary>Runs the soak; a hang is reported in the result (<see cref="SoakResult.HungPhase"/>), not thrown.</summary>
    public static async Task<SoakResult> RunAsync(SoakOptions options, TextWriter log)
    {
        var run = new SoakRun(options, log);
        try
        {
            return await run.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            foreach (var owned in run._owned)
            {
                owned.Dispose();
            }
        }
    }

    private async Task<SoakResult> RunAsync()
    {
        var started = Stopwatch.GetTimestamp();
        var cpuBefore = CpuSample.Take();
        var loadBefore = LoadAverage();

        // Setup: the authority, the relay's identity and credential, and every agent's, made once for all lives.
        var authority = await CreateIdentityAsync().ConfigureAwait(false);
        var anchors = new TrustAnchors().Trust(authority.Verified);
        var relayIdentity = await CreateIdentityAsync().ConfigureAwait(false);
        var relay = new SoakRelay(new RelayIdentity(relayIdentity, anchors, new RevocationRegistry(), [await IssueAsync(authority, relayIdentity, "system:relay", "role=relay").ConfigureAwait(false)]), _options.Pairs * 2);
        await Phase("relay start", relay.StartAsync()).ConfigureAwait(false);
        var endpoint = new RelayEndpoint(relay.EndPoint, relayIdentity.Identifier);

        using var trafficStopped = new CancellationTokenSource();
        var traffic = new SoakTraffic(_options, _ledger, trafficStopped.Token);
        var agents = new SoakAgent[_options.Pairs * 2];
        for (var i = 0; i < agents.Length; i++)
        {
            var identity = await CreateIdentityAsync().ConfigureAwait(false);
            var credential = await IssueAsync(authority, identity, "user:soak@example.com", "role=soak").ConfigureAwait(false);
            agents[i] = i % 2 == 0
                ? new SoakAgent(i, identity, credential, (self, client, life) => traffic.OpenLoopAsync(self, client, agents[self.Index + 1].Identity.Identifier.ToString(), life))
                : new SoakAgent(i, identity, credential, (self, client, life) => traffic.AcceptLoopAsync(self, client, life));
        }

        var baseline = MemorySnapshot.Take();
        await _log.WriteLineAsync($"Baseline (relay up, {agents.Length} identities made, no agent started): {baseline}").ConfigureAwait(false);

        using var sampling = new CancellationTokenSource();
        var sampler = SampleAsync(sampling.Token);

        // Acceptors first, so the openers' first channels find them registered.
        await Phase("agents start", StartAllAsync(agents.Where(a => a.Index % 2 == 1), endpoint, anchors)).ConfigureAwait(false);
        await Phase("agents start", StartAllAsync(agents.Where(a => a.Index % 2 == 0), endpoint, anchors)).ConfigureAwait(false);
        await _log.WriteLineAsync(Invariant($"{agents.Length} agents started in {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s; traffic for {_options.Duration}.")).ConfigureAwait(false);

        var trafficStarted = Stopwatch.GetTimestamp();
        using var scheduleStopped = new CancellationTokenSource(_options.Duration);
        var relayKills = _options.RelayKillEvery is { } relayEvery ? KillRelayAsync(relay, relayEvery, scheduleStopped.Token) : Task.CompletedTask;
        var agentKills = _options.AgentKillEvery is { } agentEvery ? KillAgentsAsync(agents, endpoint, anchors, agentEvery, scheduleStopped.Token) : Task.CompletedTask;
        try
        {
            await Task.Delay(_options.Duration, scheduleStopped.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The duration is over.
        }

        // A kill or a restart under way finishes first; a relay down at this moment comes back before the drain.
        await Phase("schedule end", Task.WhenAll(relayKills, agentKills)).ConfigureAwait(false);
        var trafficTime = Stopwatch.GetElapsedTime(trafficStarted);

        // The drain: openers end their current channel (closing it) and stop; then every agent is disposed.
        await trafficStopped.CancelAsync().ConfigureAwait(false);
        await Phase("drain", Task.WhenAll(agents.Where(a => a.Index % 2 == 0).Select(a => a.Work))).ConfigureAwait(false);
        await Phase("agents stop", Task.WhenAll(agents.Select(a => a.KillAsync()))).ConfigureAwait(false);
        _ledger.Totals.HopsEstablished = agents.Sum(a => a.Hops);

        var emptied = await Phase("relay empties", relay.WaitEmptyAsync(_options.PhaseDeadline)).ConfigureAwait(false);
        _ledger.Sweep(all: true);
        await sampling.CancelAsync().ConfigureAwait(false);
        await sampler.ConfigureAwait(false);
        var after = MemorySnapshot.Take();
        await _log.WriteLineAsync($"After (relay up, every agent disposed):               {after}").ConfigureAwait(false);
        await Phase("relay stop", relay.KillAsync()).ConfigureAwait(false);

        return new SoakResult(
            _options,
            _ledger.Totals,
            _ledger.UnexpectedExceptions,
            _ledger.LostMessages,
            new LatencySummary(_ledger.OneWayLatency),
            new LatencySummary(_ledger.RoundTrip),
            baseline,
            _peaks,
            after,
            emptied,
            _hung,
            trafficTime,
            Stopwatch.GetElapsedTime(started),
            CpuSample.Describe(cpuBefore, CpuSample.Take()),
            loadBefore,
            LoadAverage());
    }

    /// <summary>Awaits <paramref name="work"/> at most <see cref="SoakOptions.PhaseDeadline"/>; past it the run is hung (noted, and the run goes on to report), and so is a phase that throws.</summary>
    private async Task Phase(string name, Task work)
    {
        try
        {
            await work.WaitAsync(_options.PhaseDeadline).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _hung ??= name;
            await _log.WriteLineAsync($"HUNG: '{name}' did not finish within {_options.PhaseDeadline}.").ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failure the engine did not expect (a client or relay call throwing what it does not document) is a
            // finding: the run reports it and goes on to account for the rest.
            _ledger.Unexpected(name, e is AggregateException { InnerExceptions: [var only] } ? only : e);
            await _log.WriteLineAsync($"UNEXPECTED in '{name}': {e}").ConfigureAwait(false);
        }
    }

    private async Task<T?> Phase<T>(string name, Task<T> work)
    {
        await Phase(name, (Task)work).ConfigureAwait(false);
        return work.IsCompletedSuccessfully ? work.Result : default;
    }

    private async Task StartAllAsync(IEnumerable<SoakAgent> agents, RelayEndpoint endpoint, TrustAnchors anchors)
    {
        foreach (var batch in agents.Chunk(_options.StartBatch))
        {
            await Task.WhenAll(batch.Select(a => a.StartAsync(endpoint, anchors, CancellationToken.None))).ConfigureAwait(false);
        }
    }

    private async Task KillRelayAsync(SoakRelay relay, TimeSpan every, CancellationToken stop)
    {
        while (await WaitAsync(every, stop).ConfigureAwait(false))
        {
            await Phase("relay kill", relay.KillAsync()).ConfigureAwait(false);
            SoakTotals.Add(ref _ledger.Totals.RelayKills);
            await Task.Delay(_options.RelayDowntime, CancellationToken.None).ConfigureAwait(false);
            await Phase("relay restart", relay.StartAsync()).ConfigureAwait(false);
            await _log.WriteLineAsync(Invariant($"Relay killed and restarted on port {relay.EndPoint.Port} ({_ledger.Totals.RelayKills} so far).")).ConfigureAwait(false);
        }
    }

    private async Task KillAgentsAsync(SoakAgent[] agents, RelayEndpoint endpoint, TrustAnchors anchors, TimeSpan every, CancellationToken stop)
    {
        var random = new Random(_options.Seed);
        while (await WaitAsync(every, stop).ConfigureAwait(false))
        {
            var victims = random.GetItems(agents, Math.Min(_options.AgentsPerKill, agents.Length)).Distinct().ToArray();
            await Phase("agent kill", Task.WhenAll(victims.Select(v => v.KillAsync()))).ConfigureAwait(false);
            SoakTotals.Add(ref _ledger.Totals.AgentKills, victims.Length);
            await Task.Delay(_options.AgentDowntime, CancellationToken.None).ConfigureAwait(false);
            await Phase("agent restart", Task.WhenAll(victims.Select(v => v.StartAsync(endpoint, anchors, CancellationToken.None)))).ConfigureAwait(false);
        }
    }

    /// <summary>Waits one period; false once <paramref name="stop"/> came first.</summary>
    private static async Task<bool> WaitAsync(TimeSpan period, CancellationToken stop)
    {
        try
        {
            await Task.Delay(period, stop).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Memory peaks twice a second, and the ledger's settled sessions swept once a second.</summary>
    private async Task SampleAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        var tick = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                _peaks.Sample();
                if (++tick % 2 == 0)
                {
                    _ledger.Sweep(all: false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }
    }

    private async Task<AgentIdentity> CreateIdentityAsync()
    {
        var signer = InMemorySigner.Generate();
        _owned.Add(signer);
        return await AgentIdentity.CreateAsync(signer, TimeProvider.System).ConfigureAwait(false);
    }

    private static async Task<CredentialChain> IssueAsync(AgentIdentity authority, AgentIdentity subject, string principal, string attribute)
    {
        var now = TimeProvider.System.GetUtcNow();
        return await CredentialIssuer.IssueAsync(authority, subject.Identifier, Principal.Parse(principal), AttributeSet.Parse([attribute]), now.AddMinutes(-5), now.AddDays(1), 1).ConfigureAwait(false);
    }

    /// <summary>The relay, in this process, on the loopback port its first start bound; a kill disposes it without a stop (no GOAWAY: connections are aborted).</summary>
    private sealed class SoakRelay(RelayIdentity identity, int agents)
    {
        private WebApplication? _app;

        public IPEndPoint EndPoint { get; private set; } = new(IPAddress.Loopback, 0);

        public RelayServer Server => _app?.Services.GetRequiredService<RelayServer>() ?? throw new InvalidOperationException("The relay is down.");

        public async Task StartAsync()
        {
            var app = RelayPeers.BuildRelay([], identity, RelayPeers.RelaySettings(new Dictionary<string, string?>
            {
                ["Name"] = "soak",
                ["Endpoint"] = Invariant($"127.0.0.1:{EndPoint.Port}"),

                // Every agent connects from 127.0.0.1: the per-address cap is for the Internet, not this.
                ["MaxConnectionsPerAddress"] = Invariant($"{agents * 2}"),
            }));
            await app.StartAsync().ConfigureAwait(false);
            _app = app;
            EndPoint = app.Services.GetRequiredService<RelayServer>().HopEndPoint!;
        }

        public async Task KillAsync()
        {
            var app = _app;
            _app = null;
            if (app is not null)
            {
                await app.DisposeAsync().ConfigureAwait(false);
            }
        }

        /// <summary>Waits (polling: the relay has no event for it) until no hop and no circuit end is left; the last counts seen.</summary>
        public async Task<RelayCounts> WaitEmptyAsync(TimeSpan deadline)
        {
            var until = Stopwatch.GetTimestamp() + (long)(deadline.TotalSeconds * Stopwatch.Frequency * 0.9);
            while (true)
            {
                var counts = new RelayCounts(Server.ConnectionCount, Server.CircuitEndCount);
                if ((counts.Hops == 0 && counts.CircuitEnds == 0) || Stopwatch.GetTimestamp() > until)
                {
                    return counts;
                }

                await Task.Delay(100).ConfigureAwait(false);
            }
        }
    }
}

/// <summary>What the relay held at the end: hops past HELLO and circuit ends.</summary>
internal sealed record RelayCounts(int Hops, int CircuitEnds);

/// <summary>Managed memory after full blocking collections, and the working set, at one moment.</summary>
internal sealed record MemorySnapshot(long Managed, long WorkingSet)
{
    public static MemorySnapshot Take()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        using var self = Process.GetCurrentProcess();
        return new MemorySnapshot(managed, self.WorkingSet64);
    }

    public override string ToString() => Invariant($"managed {Mib(Managed)}, working set {Mib(WorkingSet)}");

    public static string Mib(long bytes) => Invariant($"{bytes / 1048576.0:F1} MiB");
}

/// <summary>The highest working set and managed memory sampled during the run.</summary>
internal sealed class MemoryPeaks
{
    public long WorkingSet { get; private set; }

    /// <summary>Managed bytes in use, garbage not yet collected included (GC.GetTotalMemory without a collection).</summary>
    public long Managed { get; private set; }

    public void Sample()
    {
        WorkingSet = Math.Max(WorkingSet, Environment.WorkingSet);
        Managed = Math.Max(Managed, GC.GetTotalMemory(forceFullCollection: false));
    }
}

/// <summary>p50, p99 and the maximum of one latency.</summary>
internal sealed record LatencySummary(long Count, TimeSpan P50, TimeSpan P99, TimeSpan Max)
{
    public LatencySummary(LatencyHistogram histogram)
        : this(histogram.Count, histogram.Quantile(0.5), histogram.Quantile(0.99), histogram.Max)
    {
    }
}
