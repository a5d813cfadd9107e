namespace SecureChannels.Fuzz.Tests;

/// <summary>
/// Replays every kept fuzzing input through its target: the minimised corpus (what coverage AFL reached) and the
/// regressions (inputs that once crashed, hung or broke an invariant). Any exception escaping a target is a failure:
/// the targets already swallow the typed errors their input may cause.
/// </summary>
public sealed class CorpusReplayTests
{
    public static TheoryData<string> Targets { get; } = [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void CorpusAndRegressionsReplayWithoutUntypedErrors(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var corpus = Files("corpus", name);
        Assert.True(corpus.Length > 0, $"fuzz/corpus/{name}/ is empty or missing: run fuzz/run.sh {name} and commit the corpus.");

        var failures = new List<string>();
        foreach (var file in corpus.Concat(Files("regressions", name)))
        {
            try
            {
                target.Run(File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                failures.Add($"{Path.GetRelativePath(FuzzRoot, file)}: {e.GetType().Name}: {e.Message}");
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public void EveryFolderBelongsToATarget()
    {
        var known = FuzzTargets.All.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var kind in new[] { "seeds", "corpus", "regressions" })
        {
            var folder = Path.Combine(FuzzRoot, kind);
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (var dir in Directory.GetDirectories(folder))
            {
                Assert.True(known.Contains(Path.GetFileName(dir)), $"fuzz/{kind}/{Path.GetFileName(dir)} names no target; rename or delete it.");
            }
        }
    }

    [Fact]
    public void TargetNamesAreUnique() =>
        Assert.Equal(FuzzTargets.All.Count, FuzzTargets.All.Select(t => t.Name).Distinct(StringComparer.Ordinal).Count());

    /// <summary>The repository's fuzz/ folder, found by walking up from the test's output folder.</summary>
    private static string FuzzRoot { get; } = FindFuzzRoot();

    private static string[] Files(string kind, string target)
    {
        var folder = Path.Combine(FuzzRoot, kind, target);
        return Directory.Exists(folder) ? [.. Directory.GetFiles(folder).Order(StringComparer.Ordinal)] : [];
    }

    private static string FindFuzzRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "fuzz", "SecureChannels.Fuzz");
            if (Directory.Exists(candidate))
            {
                return Path.Combine(dir.FullName, "fuzz");
            }
        }

        throw new DirectoryNotFoundException($"No fuzz/ folder above {AppContext.BaseDirectory}.");
    }
}
