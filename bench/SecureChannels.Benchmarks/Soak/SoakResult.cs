using System.Text;
using SecureChannels.Benchmarks.SideBySide;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.Soak;

/// <summary>What a soak run measured, its verdicts, and its markdown report.</summary>
internal sealed record SoakResult(
    SoakOptions Options,
    SoakTotals Totals,
    IReadOnlyDictionary<string, long> UnexpectedExceptions,
    IReadOnlyCollection<string> LostMessages,
    LatencySummary OneWay,
    LatencySummary RoundTrip,
    MemorySnapshot Baseline,
    MemoryPeaks Peaks,
    MemorySnapshot After,
    RelayCounts? RelayAtEnd,
    string? HungPhase,
    TimeSpan TrafficTime,
    TimeSpan TotalTime,
    string Cpu,
    string LoadBefore,
    string LoadAfter)
{
    /// <summary>How far above the baseline managed memory may end and still count as returned.</summary>
    public long MemoryAllowance => Math.Max((long)(Baseline.Managed * Options.MemoryTolerance), Options.MemorySlackBytes);

    public bool MemoryReturned => After.Managed <= Baseline.Managed + MemoryAllowance;

    public bool RelayEmpty => RelayAtEnd is { Hops: 0, CircuitEnds: 0 };

    /// <summary>Why the run failed; empty when it passed. Memory is reported, not judged here: a managed heap that grows is a finding to read, not a flake to fail on.</summary>
    public IReadOnlyList<string> Failures
    {
        get
        {
            var t = Totals;
            var failures = new List<string>();
            Add(t.Lost > 0, Invariant($"{t.Lost} messages lost"));
            Add(t.Duplicates > 0, Invariant($"{t.Duplicates} duplicates"));
            Add(t.OutOfOrder > 0, Invariant($"{t.OutOfOrder} out of order"));
            Add(t.Foreign > 0, Invariant($"{t.Foreign} messages not as sent"));
            Add(t.LateAttaches > 0, Invariant($"{t.LateAttaches} channels the acceptor reached after they were settled"));
            Add(t.Unexpected > 0, Invariant($"{t.Unexpected} exceptions the client does not document"));
            Add(HungPhase is not null, $"hung in '{HungPhase}'");
            Add(!RelayEmpty, RelayAtEnd is { } r ? Invariant($"the relay still holds {r.Hops} hops and {r.CircuitEnds} circuit ends") : "the relay's counts were not read");
            Add(t.Sent == 0, "no message was sent");
            return failures;

            void Add(bool failed, string why)
            {
                if (failed)
                {
                    failures.Add(why);
                }
            }
        }
    }

    public bool Passed => Failures.Count == 0;

    public string ToMarkdown(string command, string commit, IReadOnlyList<SoakResult>? earlierRuns = null)
    {
        var t = Totals;
        var o = Options;
        var text = new StringBuilder();
        void Line(FormattableString line) => text.AppendLine(Invariant(line));

        Line($"# Soak run: {(Passed ? "PASSED" : "FAILED")}");
        Line($"");
        Line($"`dotnet run -c Release --project bench/SecureChannels.Benchmarks -- {command}` (issue 8). The relay, in this process, is killed and restarted on its port on a schedule, and so are some agents (client disposed under its work, back with the same identity); every message is accounted for.");
        Line($"");
        Line($"- Date: {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC; commit {commit}");
        Line($"- Machine: {RunEnvironment.Machine()}");
        Line($"- Load average (1, 5, 15 min) before: {LoadBefore}; after: {LoadAfter}. {Cpu}");
        Line($"- Parameters: {o.Agents} agents ({o.Pairs} opener/acceptor pairs), traffic for {o.Duration} (ran {TrafficTime.TotalSeconds:F0} s; {TotalTime.TotalSeconds:F0} s in all), seed {o.Seed}; relay killed every {Every(o.RelayKillEvery)} for {o.RelayDowntime.TotalSeconds:F0} s; {o.AgentsPerKill} agents killed every {Every(o.AgentKillEvery)} for {o.AgentDowntime.TotalSeconds:F0} s; 1 to {o.MaxMessagesPerChannel} messages per side per channel, pauses up to {o.MaxPause.TotalMilliseconds:F0} ms, {o.RequestShare:P0} requests, {o.DisposeShare:P0} of channels disposed instead of closed; phase deadline {o.PhaseDeadline.TotalSeconds:F0} s.");
        Line($"");
        if (!Passed)
        {
            Line($"**Failed:** {string.Join("; ", Failures)}.");
            Line($"");
        }

        Line($"## Messages");
        Line($"");
        Line($"| | count | |");
        Line($"| --- | ---: | --- |");
        Line($"| sent | {t.Sent:N0} | one-way and requests, both directions ({t.Requests:N0} requests); {t.Sent / Math.Max(1, TrafficTime.TotalSeconds):N0} per second |");
        Line($"| delivered | {t.Delivered:N0} | the receiver read that sequence number |");
        Line($"| reported failed | {t.ReportedFailed:N0} | the receiver never read it, and the sender was told: a typed exception (SecureChannelException, AgentRequestException), or for {t.Unacknowledged:N0} one-way messages, past the channel's MessagesAcknowledged when it ended |");
        Line($"| delivered and reported failed | {t.DeliveredAndReported:N0} | read by the receiver although the sender was told it may not have been: a request whose response was lost with the channel, or a one-way message whose ACK was |");
        Line($"| acknowledged, then dropped by the receiver | {t.DroppedByReceiver:N0} | one-way, acknowledged by the receiver's channel, not read because the receiving application ended the channel itself first (disposed it, or its agent was killed) |");
        Line($"| **lost** | **{t.Lost:N0}** | sent − the rows above: answered or acknowledged, then read by nobody without the receiver ending the channel itself; must be 0 |");
        Line($"| duplicates | {t.Duplicates:N0} | must be 0 |");
        Line($"| out of order | {t.OutOfOrder:N0} | must be 0 |");
        Line($"| not as sent | {t.Foreign:N0} | a payload or response naming another session or number; must be 0 |");
        Line($"");
        if (LostMessages.Count > 0)
        {
            Line($"The first lost messages:");
            Line($"");
            foreach (var lost in LostMessages)
            {
                Line($"- {lost}");
            }

            Line($"");
        }

        if (UnexpectedExceptions.Count > 0)
        {
            Line($"Exceptions the client does not document (where: type: message (where thrown)), with their counts:");
            Line($"");
            foreach (var (what, count) in UnexpectedExceptions.OrderByDescending(u => u.Value))
            {
                Line($"- {count:N0} × {what}");
            }

            Line($"");
        }

        Line($"## Latency");
        Line($"");
        Line($"| | samples | p50 | p99 | max |");
        Line($"| --- | ---: | ---: | ---: | ---: |");
        Line($"| one-way, send to read | {OneWay.Count:N0} | {Ms(OneWay.P50)} | {Ms(OneWay.P99)} | {Ms(OneWay.Max)} |");
        Line($"| request round trip | {RoundTrip.Count:N0} | {Ms(RoundTrip.P50)} | {Ms(RoundTrip.P99)} | {Ms(RoundTrip.Max)} |");
        Line($"");
        Line($"Quantiles are the upper edge of 2 % wide buckets. Only delivered messages and answered requests have a latency: a channel broken by a kill fails its messages rather than holding them until the relay is back.");
        Line($"");
        Line($"## Channels, hops, restarts");
        Line($"");
        Line($"- Channels opened {t.ChannelsOpened:N0} (each a circuit and an end-to-end handshake), accepted {t.ChannelsAccepted:N0}, opens failed {t.OpenFailures:N0} (relay down, partner dead, time-outs); ended by a graceful close {t.GracefulCloses:N0}, by disposal {t.Disposals:N0}, the rest by a kill.");
        Line($"- Hop handshakes (agent to relay) {t.HopsEstablished:N0}: {o.Pairs * 2:N0} first ones, the rest reconnects after relay kills and agent restarts.");
        Line($"- Relay kills {t.RelayKills}, agent kills {t.AgentKills}.");
        Line($"- At the end, with every agent disposed, the relay held {RelayAtEnd?.Hops.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) ?? "?"} hops and {RelayAtEnd?.CircuitEnds.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) ?? "?"} circuit ends (must be 0: no half-open circuit).");
        Line($"");
        Line($"## Memory (this process: the relay and every agent)");
        Line($"");
        Line($"| | managed (after full GC) | working set |");
        Line($"| --- | ---: | ---: |");
        Line($"| baseline: relay up, identities made, no agent started | {MemorySnapshot.Mib(Baseline.Managed)} | {MemorySnapshot.Mib(Baseline.WorkingSet)} |");
        Line($"| peak, sampled twice a second (managed: in use, garbage included) | {MemorySnapshot.Mib(Peaks.Managed)} | {MemorySnapshot.Mib(Peaks.WorkingSet)} |");
        Line($"| after: every agent disposed, relay up | {MemorySnapshot.Mib(After.Managed)} | {MemorySnapshot.Mib(After.WorkingSet)} |");
        Line($"");
        if (earlierRuns is { Count: > 0 })
        {
            Line($"This is run {earlierRuns.Count + 1} of the soak in one process (--repeat); managed memory before and after each: {string.Join("; ", earlierRuns.Append(this).Select(r => MemorySnapshot.Mib(r.Baseline.Managed) + " → " + MemorySnapshot.Mib(r.After.Managed)))}. Earlier runs: {string.Join("; ", earlierRuns.Select(r => r.Passed ? "passed" : "FAILED: " + string.Join(", ", r.Failures)))}.");
            Line($"");
        }

        Line($"Managed memory {(MemoryReturned ? "returned" : "did NOT return")} to baseline: {MemorySnapshot.Mib(After.Managed - Baseline.Managed)} above it, tolerance {MemorySnapshot.Mib(MemoryAllowance)} (the larger of {o.MemoryTolerance:P0} of the baseline and {MemorySnapshot.Mib(o.MemorySlackBytes)}). The working set is shown, not judged: the runtime keeps freed GC regions and pooled buffers committed.");
        return text.ToString();
    }

    private static string Every(TimeSpan? every) => every is { } e ? Invariant($"{e.TotalSeconds:F0} s") : "never";

    private static string Ms(TimeSpan t) => Invariant($"{t.TotalMilliseconds:F2} ms");
}
