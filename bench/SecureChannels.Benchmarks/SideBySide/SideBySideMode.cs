using System.Diagnostics;
using System.Globalization;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// <c>compare</c>: our channel and relay side by side with their baselines, in one process run without BenchmarkDotNet,
/// each figure the median of rounds that alternate the contenders, each with its goal. Prints one markdown document and
/// writes it to bench/results/compare-YYYY-MM-DD.md and compare-latest.md. Exit code 1 when a measurement failed (a
/// goal not met is reported, not a failure).
/// </summary>
internal static class SideBySideMode
{
    public const string Command = "compare";

    public static int Run(IReadOnlyList<string> args)
    {
        var settings = SideBySideSettings.Parse(args, out var error);
        if (settings is null)
        {
            Console.Error.WriteLine(error);
            return 1;
        }

        return RunAsync(settings, string.Join(' ', args.Prepend(Command))).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(SideBySideSettings settings, string command)
    {
        var root = RunEnvironment.FindRepositoryRoot();
        if (root is null)
        {
            Console.Error.WriteLine("Run compare from inside the repository: no folder holding SecureChannels.sln above the current directory, so nowhere to write bench/results.");
            return 1;
        }

        var progress = Console.Error;
        var date = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var loadBefore = LoadAverage();
        var cpuBefore = CpuSample.Take();
        var commit = await RunEnvironment.CommitAsync(root).ConfigureAwait(false);
        var report = new CompareReport();
        (string Title, Func<Task> Run)[] sections =
        [
            (TcpHandshakeSection.Title, () => TcpHandshakeSection.RunAsync(report, settings)),
            (InMemoryHandshakeSection.Title, () => InMemoryHandshakeSection.RunAsync(report, settings)),
            (ChannelThroughputSection.Title, () => ChannelThroughputSection.RunAsync(report, settings)),
            (RelaySection.Title, () => RelaySection.RunAsync(report, settings)),
            (RelayCapacitySection.Title, () => RelayCapacitySection.RunAsync(report, settings, progress)),
            (AllocationSection.Title, () => AllocationSection.RunAsync(report, settings)),
        ];
        foreach (var (title, run) in sections)
        {
            await progress.WriteLineAsync(Invariant($"[{Stopwatch.GetElapsedTime(started).TotalSeconds,5:F1} s] {title}")).ConfigureAwait(false);
            report.Heading(title);
            try
            {
                await run().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One broken section must not hide the others' figures; the run still ends with a failing exit code.
                report.Fail(title, e);
                await progress.WriteLineAsync($"FAILED: {e}").ConfigureAwait(false);
            }
        }

        var header = Header(settings, command, date, commit, loadBefore, CpuSample.Describe(cpuBefore, CpuSample.Take()));
        var markdown = report.Compose(header);
        await Console.Out.WriteAsync(markdown).ConfigureAwait(false);

        var folder = Path.Combine(root, "bench", "results");
        Directory.CreateDirectory(folder);
        foreach (var name in new[] { $"compare-{date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}.md", "compare-latest.md" })
        {
            await File.WriteAllTextAsync(Path.Combine(folder, name), markdown).ConfigureAwait(false);
            await progress.WriteLineAsync("Written: " + Path.Combine(folder, name)).ConfigureAwait(false);
        }

        return report.Failed ? 1 : 0;
    }

    private static string Header(SideBySideSettings settings, string command, DateTimeOffset date, string commit, string loadBefore, string cpu) =>
        string.Join(
            Environment.NewLine,
            "# SecureChannels side by side",
            "",
            $"- **Command:** `dotnet run -c Release --project bench/SecureChannels.Benchmarks -- {command}`" + (settings.Quick ? " (a smoke run: short rounds, rough numbers)" : ""),
            Invariant($"- **Method:** one process; each figure is the median of {settings.Rounds} rounds of about {settings.RoundTime.TotalSeconds:F1} s per contender, after a calibration run that also warms up; the order of the contenders reverses every round. Every measurement first checks its result (bytes received, identities, TLS 1.3 with mutual authentication)."),
            $"- **Date (UTC):** {date.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)}",
            $"- **Commit:** {commit}",
            $"- **Machine:** {RunEnvironment.Machine()}",
            $"- **Load average (1, 5, 15 min):** before {loadBefore}; after {LoadAverage()}",
            $"- **CPU:** {cpu} Other processes make thread hand-offs (small messages, handshakes) slower and noisier first.",
            "- Ratios are of rates (ours / theirs): above 1.00x ours is faster. Everything protocol-side runs on FixedTimeProvider, the relay on TimeProvider.System.",
            "");
}
