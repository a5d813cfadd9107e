using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>Section 5: the relay's memory per idle hop and per idle circuit, with many circuits open (<see cref="RelayMemory"/>).</summary>
internal static class RelayCapacitySection
{
    public const string Title = "5. Relay capacity: memory per idle circuit and per hop";

    private const int GoalCircuits = 10_000;

    private static readonly Goal PerCircuit = Goal.AtMostBytes(8 * 1024);

    public static async Task RunAsync(CompareReport report, SideBySideSettings settings, TextWriter progress)
    {
        var result = await RelayMemory.MeasureAsync(progress, settings.RelayCircuits).ConfigureAwait(false);
        var (hop, circuit) = (result.PerHop, result.PerCircuit);

        // Judged on the larger of the managed and the working-set figure: the circuit must be cheap in both. A quick run
        // holds fewer circuits than the goal names, so it cannot judge it.
        var worst = Math.Max(circuit.Managed, circuit.WorkingSet);
        var verdict = result.Circuits >= GoalCircuits
            ? report.Judge(Invariant($"Relay: memory per idle circuit, {result.Circuits:N0} open"), PerCircuit, worst, FormatBytes(worst))
            : Invariant($"not judged: {result.Circuits:N0} < {GoalCircuits:N0} circuits");

        var table = new MarkdownTable("relay process, per", "managed (GC.GetTotalMemory)", "GC heap size", "working set", "goal", "verdict");
        table.Row(Invariant($"idle circuit ({result.Circuits:N0} open, ends on two hops)"), FormatBytes(circuit.Managed), FormatBytes(circuit.HeapSize), FormatBytes(circuit.WorkingSet), PerCircuit.Text, verdict);
        table.Row(Invariant($"idle hop ({RelayMemory.Hops} listening: TCP, hop channel, HELLO)"), FormatBytes(hop.Managed), FormatBytes(hop.HeapSize), FormatBytes(hop.WorkingSet), "", "");
        report.Table(table);
        report.Note(
            Invariant($"A relay alone in a child process ({RelayHostProcess.Switch}; TimeProvider.System), agents in this one: {RelayMemory.Hops} agents open one listening hop each, then one"),
            Invariant($"agent opens {result.Circuits:N0} circuits to another ({result.OpenRate:N0} circuits/s, {RelayMemory.OpenBatch} OPENs in flight); the relay reported"),
            Invariant($"{result.WithCircuits.CircuitEnds:N0} circuit ends and {result.WithCircuits.Hops} hops, as expected. Per item = the difference in the relay process after full blocking"),
            "compacting collections, divided by the count. Working set includes native memory (socket buffers, libsodium guarded pages) and is",
            Invariant($"indicative; the goal is judged on the larger of managed and working set. Agents' side, for comparison: {FormatBytes(result.AgentSidePerCircuit)} per circuit."));
    }
}
