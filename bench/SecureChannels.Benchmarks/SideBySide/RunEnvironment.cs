using System.ComponentModel;
using System.Diagnostics;
using System.Runtime;
using System.Runtime.InteropServices;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Where and on what a run happened, for the results' header: the repository (found by walking up to
/// SecureChannels.sln), its git commit and whether the tree had changes, and the machine.
/// </summary>
internal static class RunEnvironment
{
    private const string SolutionFile = "SecureChannels.sln";

    /// <summary>The folder holding SecureChannels.sln, from the current directory up; null when there is none.</summary>
    public static string? FindRepositoryRoot()
    {
        for (var folder = new DirectoryInfo(Directory.GetCurrentDirectory()); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, SolutionFile)))
            {
                return folder.FullName;
            }
        }

        return null;
    }

    /// <summary>The short commit, with a note when the working tree differs from it; "unknown" without git.</summary>
    public static async Task<string> CommitAsync(string? root)
    {
        if (root is null || await GitAsync(root, "rev-parse", "--short", "HEAD").ConfigureAwait(false) is not { Length: > 0 } commit)
        {
            return "unknown (no git)";
        }

        var changes = (await GitAsync(root, "status", "--porcelain").ConfigureAwait(false))?.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        return changes switch
        {
            null => commit,
            0 => commit + " (clean tree)",
            _ => Invariant($"{commit} (dirty tree: {changes} changed or untracked files; the numbers are of the working tree, not of the commit alone)"),
        };
    }

    /// <summary>Logical cores, CPU model, OS, runtime, GC mode.</summary>
    public static string Machine() =>
        Invariant($"{Environment.ProcessorCount} logical cores ({CpuModel()}), {RuntimeInformation.OSDescription} {RuntimeInformation.OSArchitecture}, {RuntimeInformation.FrameworkDescription}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC");

    private static string CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo")
                .Where(line => line.StartsWith("model name", StringComparison.Ordinal))
                .Select(line => line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim())
                .FirstOrDefault() ?? "CPU model unknown";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "CPU model unknown";
        }
    }

    /// <summary>git's trimmed output, or null when git is absent or fails.</summary>
    private static async Task<string?> GitAsync(string root, params string[] args)
    {
        var start = new ProcessStartInfo("git")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            using var git = Process.Start(start);
            if (git is null)
            {
                return null;
            }

            // Both streams read at once: a full stderr pipe would otherwise block git before it ends stdout.
            var error = git.StandardError.ReadToEndAsync();
            var output = await git.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
            await error.ConfigureAwait(false);
            await git.WaitForExitAsync().ConfigureAwait(false);
            return git.ExitCode == 0 ? output.Trim() : null;
        }
        catch (Win32Exception)
        {
            // No git on the machine.
            return null;
        }
    }
}
