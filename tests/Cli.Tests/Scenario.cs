namespace SecureChannels.Cli.Tests;

/// <summary>
/// The common setup: an authority, and alice holding <c>alice.chain</c> from it (principal user:carol@example.com,
/// role=billing, env={prod, staging}, one hour, one further hop), with both histories exported to the sandbox.
/// </summary>
internal sealed record Scenario(string Authority, string Alice)
{
    public static async Task<Scenario> IssueAliceAsync(CliSandbox sandbox)
    {
        var authority = await sandbox.CreateIdentityAsync("authority");
        var alice = await sandbox.CreateIdentityAsync("alice");
        (await sandbox.RunAsync(
            "credential", "issue", "--authority", "authority", "--subject", alice, "--principal", "user:carol@example.com",
            "--attr", "role=billing", "--attr", "env=prod", "--attr", "env=staging", "--valid-for", "1h", "--max-depth", "1",
            "--out", "alice.chain")).Succeeded();
        return new Scenario(authority, alice);
    }

    /// <summary>Adds bob and delegates role=billing, env=prod to him for 30 minutes as <c>bob.chain</c>; returns bob's identifier.</summary>
    public static async Task<string> DelegateToBobAsync(CliSandbox sandbox)
    {
        var bob = await sandbox.CreateIdentityAsync("bob");
        (await sandbox.RunAsync(
            "credential", "delegate", "--holder", "alice", "--chain", "alice.chain", "--subject", "bob.identity",
            "--attr", "role=billing", "--attr", "env=prod", "--valid-for", "30m", "--out", "bob.chain")).Succeeded();
        return bob;
    }
}
