using System.Text.RegularExpressions;

namespace SecureChannels.Protocol.Tests.Docs;

/// <summary>
/// Everything time-based in shipped code (expiry, rekey, timeouts, back-off, deadlines) reads a
/// <see cref="TimeProvider"/>, so tests move a fake clock instead of waiting. This reads every source file
/// under src/ and names each line that asks the machine's clock directly.
/// </summary>
public sealed partial class TimeDisciplineTests
{
    // Lines that must pass a TimeProvider: it shows up as one of these names on the same line.
    private static readonly string[] NeedsProvider = ["Task.Delay(", "new CancellationTokenSource(", "new PeriodicTimer(", ".WaitAsync(TimeSpan", "CreateTimer("];

    [Fact]
    public void ShippedCodeReadsTheClockOnlyThroughATimeProvider()
    {
        var src = Path.Combine(ProtocolDocument.RepositoryRoot(), "src");
        var offences = new List<string>();
        var files = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        foreach (var file in files)
        {
            var lineNumber = 0;
            foreach (var line in File.ReadLines(file))
            {
                lineNumber++;
                var code = line.TrimStart();
                if (code.StartsWith("//", StringComparison.Ordinal) || code.StartsWith("///", StringComparison.Ordinal))
                {
                    continue;
                }

                var where = $"{Path.GetRelativePath(src, file)}:{lineNumber}: {code}";
                if (MachineClock().IsMatch(code))
                {
                    offences.Add(where);
                }
                else if (NeedsProvider.Any(p => code.Contains(p, StringComparison.Ordinal)) && code.Contains("TimeSpan", StringComparison.Ordinal) && !Provider().IsMatch(code))
                {
                    offences.Add(where);
                }
                else if (code.Contains("Task.Delay(", StringComparison.Ordinal) && !Provider().IsMatch(code))
                {
                    offences.Add(where);
                }
            }
        }

        Assert.True(files.Count > 100, $"Only {files.Count} source files found under {src}.");
        Assert.True(offences.Count == 0, "These lines read the machine's clock instead of a TimeProvider:\n" + string.Join('\n', offences));
    }

    [GeneratedRegex(@"\bDateTime(Offset)?\.(Utc)?Now\b|\bThread\.Sleep\(|\bEnvironment\.TickCount|\.CancelAfter\(|\bnew (System\.Threading\.)?Timer\(")]
    private static partial Regex MachineClock();

    [GeneratedRegex(@"\b(_?time|_?timeProvider|TimeProvider(\.System)?|[A-Za-z_.]*\.TimeProvider|Time|_clock|clock)\b")]
    private static partial Regex Provider();
}
