using System.Diagnostics;
using System.Text.Json;

namespace SecureChannels.Cli.Tests;

/// <summary>
/// A temporary working directory in which the real <c>securechannels</c> executable runs, one process per command,
/// with <c>SECURECHANNELS_PASSPHRASE</c> set on the child only. Deleted on dispose.
/// </summary>
internal sealed class CliSandbox : IDisposable
{
    public const string Passphrase = "correct horse battery staple 7f3a";

    // A guard against a hung process, not a synchronisation device: every command ends long before it.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(90);

    public CliSandbox()
    {
        Directory = Path.Combine(Path.GetTempPath(), $"securechannels-cli-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    /// <summary>Every result so far, to check that no output ever carries the passphrase.</summary>
    public List<CliResult> History { get; } = [];

    public string PathOf(string file) => Path.Combine(Directory, file);

    public Task<CliResult> RunAsync(params string[] arguments) => RunAsync(arguments, Passphrase);

    public async Task<CliResult> RunAsync(string[] arguments, string? passphrase)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Directory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "securechannels.dll"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Remove("SECURECHANNELS_PASSPHRASE");
        if (passphrase is not null)
        {
            start.Environment["SECURECHANNELS_PASSPHRASE"] = passphrase;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the CLI.");
        using var guard = new CancellationTokenSource(Guard);
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(guard.Token);
            var stderr = process.StandardError.ReadToEndAsync(guard.Token);
            await process.WaitForExitAsync(guard.Token);
            var result = new CliResult(arguments, process.ExitCode, await stdout, await stderr);
            History.Add(result);
            return result;
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>Creates an identity (fast KDF) and exports its history to <c>NAME.identity</c> in the sandbox; returns the identifier.</summary>
    public async Task<string> CreateIdentityAsync(string name)
    {
        var created = (await RunAsync("identity", "create", "--name", name, "--insecure-fast-kdf", "--json")).Succeeded();
        (await RunAsync("identity", "export", "--name", name, "--out", $"{name}.identity")).Succeeded();
        return created.Json.GetProperty("identifier").GetString()!;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temporary directory must not fail a test.
        }
    }
}

internal sealed record CliResult(string[] Arguments, int ExitCode, string Stdout, string Stderr)
{
    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Stdout parsed as the one JSON object <c>--json</c> promises.</summary>
    public JsonElement Json
    {
        get
        {
            using var document = JsonDocument.Parse(Stdout);
            Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
            return document.RootElement.Clone();
        }
    }

    /// <summary>The text value after <c>label</c> on the line that starts with it.</summary>
    public string? Field(string label) =>
        Lines.FirstOrDefault(l => l.StartsWith(label + " ", StringComparison.Ordinal))?[label.Length..].Trim();

    public CliResult Succeeded()
    {
        Assert.True(ExitCode == 0, ToString());
        return this;
    }

    public CliResult Exited(int code)
    {
        Assert.True(ExitCode == code, $"expected exit {code}; {this}");
        return this;
    }

    public override string ToString() => $"securechannels {string.Join(' ', Arguments)}: exit {ExitCode}; stdout: {Stdout}; stderr: {Stderr}";
}
