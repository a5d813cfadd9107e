using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>Section 6: what a channel message allocates in steady state, by where (<see cref="ChannelAllocationProbe"/>).</summary>
internal static class AllocationSection
{
    public const string Title = "6. Allocations per transport message in steady state";

    public static async Task RunAsync(CompareReport report, SideBySideSettings settings)
    {
        var samples = await ChannelAllocationProbe.RunAsync(settings.ProbeSizes).ConfigureAwait(false);
        var table = new MarkdownTable("size", "messages", "SendAsync call", "ReceiveAsync call + Dispose", "send + receive", "goal", "verdict", "elsewhere (pump, hand-offs)", "all threads");
        foreach (var sample in samples)
        {
            var path = sample.SendCall + sample.ReceiveCall;
            var shown = Bytes(path);
            table.Row(
                FormatSize(sample.Size),
                Invariant($"{sample.Messages:N0}"),
                Bytes(sample.SendCall),
                Bytes(sample.ReceiveCall),
                shown,
                Goal.NoAllocation.Text,
                report.Judge(Invariant($"Allocations per {FormatSize(sample.Size)} message, SendAsync + ReceiveAsync"), Goal.NoAllocation, path, shown),
                Bytes(sample.Elsewhere),
                Bytes(sample.Total));
        }

        report.Table(table);
        report.Note(
            "ChannelAllocationProbe over one in-memory channel of ChannelPeers (FixedTimeProvider): about 64 MiB of messages per size (at most",
            "20,000) after a quarter as much warm-up, each sent, received and disposed in turn. SendAsync call = bytes the sending thread",
            "allocated inside SendAsync; ReceiveAsync call = the receiving thread inside ReceiveAsync and the message's Dispose (GC.GetAllocatedBytesForCurrentThread);",
            "all threads = GC.GetTotalAllocatedBytes(precise), so elsewhere = the channel's receive pump, the pipes and thread-pool hand-offs.",
            "The goal is judged on the two calls, the path the application drives; averages below 0.5 B round to 0 B.");
    }

    private static string Bytes(double bytes) => Invariant($"{bytes:F1} B");
}
