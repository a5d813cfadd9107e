using System.Diagnostics;
using System.Net.Http;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;

namespace SecureChannels.Cli.Tests;

/// <summary><c>securechannels authority</c>: the operator's commands on the data folder, and <c>authority run</c>.</summary>
public sealed partial class AuthorityCommandTests
{
    // A guard against a hung process, not a synchronisation device.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_operator_creates_tickets_revokes_publishes_queries_and_verifies_the_audit_log_which_detects_an_edit()
    {
        using var sandbox = new CliSandbox();
        var authority = await sandbox.CreateIdentityAsync("authority");

        var ticket = (await sandbox.RunAsync("authority", "ticket", "create", "--principal", "user:alice", "--attr", "role=worker", "--attr", "note=it's \"quoted\"", "--max-depth", "1", "--json")).Succeeded().Json;
        Assert.StartsWith("sct1_", ticket.GetProperty("ticket").GetString(), StringComparison.Ordinal);
        Assert.Equal(32, ticket.GetProperty("id").GetString()!.Length);
        var revoked = (await sandbox.RunAsync("authority", "revoke", "--principal", "user:bob", "--reason", "left the company", "--json")).Succeeded().Json;
        Assert.Equal(1, revoked.GetProperty("sequence").GetInt32());
        var published = (await sandbox.RunAsync("authority", "policy", "publish", "--resource", "billing", "--text", "subject.role == \"worker\"", "--json")).Succeeded().Json;
        Assert.Equal(1, published.GetProperty("version").GetInt32());
        var query = (await sandbox.RunAsync("authority", "query", "--acting-for", "user:alice", "--json")).Succeeded().Json;
        Assert.Equal(0, query.GetProperty("credentials").GetArrayLength());

        var verified = (await sandbox.RunAsync("authority", "audit", "verify", "--json")).Succeeded().Json;
        Assert.True(verified.GetProperty("intact").GetBoolean());
        Assert.Equal(3, verified.GetProperty("recordsChecked").GetInt32());
        var head = verified.GetProperty("head").GetString()!;
        Assert.StartsWith("3:", head, StringComparison.Ordinal);

        var export = (await sandbox.RunAsync("authority", "audit", "export")).Succeeded();
        Assert.Equal(3, export.Lines.Length);
        Assert.Contains(authority, export.Lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(ticket.GetProperty("ticket").GetString()!, export.Stdout, StringComparison.Ordinal);
        await File.WriteAllTextAsync(sandbox.PathOf("audit.jsonl"), export.Stdout);
        Assert.True((await sandbox.RunAsync("authority", "audit", "verify", "--file", "audit.jsonl", "--head", head, "--json")).Succeeded().Json.GetProperty("intact").GetBoolean());

        // Someone edits why bob was revoked, straight in the database.
        using (var connection = new SqliteConnection($"Data Source={sandbox.PathOf(".securechannels/authority-data/authority.db")};Pooling=False"))
        {
            connection.Open();
            using var update = connection.CreateCommand();
            update.CommandText = "UPDATE audit SET reason = 'routine' WHERE sequence = 2";
            Assert.Equal(1, update.ExecuteNonQuery());
        }

        var tampered = (await sandbox.RunAsync("authority", "audit", "verify")).Exited(1);
        Assert.Contains("TAMPERED at record 2", tampered.Stdout, StringComparison.Ordinal);
        Assert.All(sandbox.History, r => Assert.DoesNotContain(CliSandbox.Passphrase, r.Stdout + r.Stderr, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Operator_commands_refuse_bad_usage_with_exit_code_2()
    {
        using var sandbox = new CliSandbox();
        Assert.Contains("authority run", (await sandbox.RunAsync("authority", "ticket", "create", "--principal", "user:alice")).Exited(2).Stderr, StringComparison.Ordinal);
        await sandbox.CreateIdentityAsync("authority");
        (await sandbox.RunAsync("authority", "revoke", "--principal", "user:a", "--subject", "x", "--reason", "r")).Exited(2);
        (await sandbox.RunAsync("authority", "ticket", "create", "--principal", "nobody")).Exited(2);
        (await sandbox.RunAsync("authority", "policy", "publish", "--resource", "r", "--text", "subject.role ==")).Exited(2);
        (await sandbox.RunAsync("authority", "audit", "verify", "--head", "nonsense")).Exited(2);
    }

    [Fact]
    public async Task Authority_run_starts_with_no_configuration_and_serves_healthz()
    {
        using var sandbox = new CliSandbox();
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = sandbox.Directory };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "securechannels.dll"), "authority", "run", "--insecure-fast-kdf", "--Authority:Endpoint=127.0.0.1:0", "--Authority:MetricsEndpoint=127.0.0.1:0" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["SECURECHANNELS_PASSPHRASE"] = CliSandbox.Passphrase;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the CLI.");
        using var guard = new CancellationTokenSource(Guard);
        try
        {
            var stderr = process.StandardError.ReadToEndAsync(guard.Token);
            Match match;
            do
            {
                var line = await process.StandardOutput.ReadLineAsync(guard.Token) ?? throw new InvalidOperationException($"The authority exited: {await stderr}");
                match = Listening().Match(line);
            }
            while (!match.Success);

            using (var http = new HttpClient())
            {
                Assert.Equal("ok", await http.GetStringAsync(new Uri($"http://{match.Groups["metrics"].Value}/healthz"), guard.Token));
                Assert.Contains("securechannels_authority", await http.GetStringAsync(new Uri($"http://{match.Groups["metrics"].Value}/metrics"), guard.Token), StringComparison.Ordinal);
            }

            Assert.True(File.Exists(sandbox.PathOf(".securechannels/authority.identity")));
            Assert.True(File.Exists(sandbox.PathOf(".securechannels/authority-data/authority.db")));
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(guard.Token);
            }

            await process.WaitForExitAsync(guard.Token);
            Assert.True(process.ExitCode == 0, await stderr);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    [GeneratedRegex(@"^authority (?<id>I[0-9a-f]{64}) listening on (?<endpoint>\S+) \(metrics on (?<metrics>\S+)\)$")]
    private static partial Regex Listening();
}
