using System.Globalization;
using SecureChannels.Benchmarks.SideBySide;

namespace SecureChannels.Benchmarks.Soak;

/// <summary>
/// <c>soak [--quick] [--agents N] [--duration 10m] [--seed S] ...</c>: runs the soak, prints its report and writes it to
/// bench/results/soak-YYYY-MM-DD.md and soak-latest.md. Exit code 1 when a message was lost, duplicated or out of
/// order, a phase hung, or the relay kept a circuit; 2 for bad arguments.
/// </summary>
internal static class SoakMode
{
    public const string Command = "soak";

    public static int Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args)
    {
        SoakOptions options;
        try
        {
            options = SoakOptions.Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 2;
        }

        var root = RunEnvironment.FindRepositoryRoot();
        if (root is null)
        {
            await Console.Error.WriteLineAsync("Run soak from inside the repository: no folder holding SecureChannels.sln above the current directory, so nowhere to write bench/results.").ConfigureAwait(false);
            return 2;
        }

        var commit = await RunEnvironment.CommitAsync(root).ConfigureAwait(false);
        var earlier = new List<SoakResult>();
        var result = await SoakRun.RunAsync(options, Console.Error).ConfigureAwait(false);
        for (var run = 2; run <= options.Repeat; run++)
        {
            earlier.Add(result);
            result = await SoakRun.RunAsync(options, Console.Error).ConfigureAwait(false);
        }

        var markdown = result.ToMarkdown(string.Join(' ', args.Prepend(Command)), commit, earlier);
        await Console.Out.WriteAsync(markdown).ConfigureAwait(false);

        var folder = Path.Combine(root, "bench", "results");
        Directory.CreateDirectory(folder);
        foreach (var name in new[] { $"soak-{DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}.md", "soak-latest.md" })
        {
            await File.WriteAllTextAsync(Path.Combine(folder, name), markdown).ConfigureAwait(false);
            await Console.Error.WriteLineAsync("Written: " + Path.Combine(folder, name)).ConfigureAwait(false);
        }

        return result.Passed && earlier.All(r => r.Passed) ? 0 : 1;
    }
}
