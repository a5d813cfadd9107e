using System.Diagnostics;
using System.Text;

namespace SecureChannels.Conformance.Tests;

/// <summary>A conformance peer running as its own process: ours (the real CLI) or the independent Python one.</summary>
internal sealed class PeerProcess : IAsyncDisposable
{
    // A guard against a hung peer, not a synchronisation device: every run ends long before it.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(90);

    private readonly Process _process;
    private readonly Task<string> _stderr;
    private readonly StringBuilder _stdout = new();

    private PeerProcess(string fileName, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        _stderr = _process.StandardError.ReadToEndAsync();
    }

    /// <summary>Path of the Debian interpreter that sees python3-dissononce (installed by .ci/run).</summary>
    public const string DebianPython = "/usr/bin/python3";

    public static string DissononceScript => Path.Combine(AppContext.BaseDirectory, "Interop", "dissononce_peer.py");

    public static PeerProcess StartOurs(IEnumerable<string> arguments)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        return new PeerProcess(dotnet, [Path.Combine(AppContext.BaseDirectory, "securechannels.dll"), .. arguments]);
    }

    public static PeerProcess StartDissononce(IEnumerable<string> arguments) => new(DebianPython, [DissononceScript, .. arguments]);

    /// <summary>Reads one line of standard output (for the responder's <c>listening HOST:PORT</c>).</summary>
    public async Task<string> ReadLineAsync()
    {
        using var guard = new CancellationTokenSource(Guard);
        var line = await _process.StandardOutput.ReadLineAsync(guard.Token) ?? string.Empty;
        _stdout.AppendLine(line);
        return line;
    }

    public async Task<PeerOutcome> WaitAsync()
    {
        using var guard = new CancellationTokenSource(Guard);
        var rest = await _process.StandardOutput.ReadToEndAsync(guard.Token);
        await _process.WaitForExitAsync(guard.Token);
        _stdout.Append(rest);
        return new PeerOutcome(_process.ExitCode, _stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), await _stderr);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

internal sealed record PeerOutcome(int ExitCode, string[] Lines, string Stderr)
{
    public string? Value(string key) => Lines.FirstOrDefault(l => l.StartsWith(key + " ", StringComparison.Ordinal))?[(key.Length + 1)..];

    public override string ToString() => $"exit {ExitCode}; stdout: {string.Join(" | ", Lines)}; stderr: {Stderr}";
}
