namespace SecureChannels.Cli.Tests;

/// <summary><c>securechannels demo</c>, the README's first command: runs to completion and shows what it promises.</summary>
public sealed class DemoCommandTests
{
    [Fact]
    public async Task The_demo_runs_to_completion_and_shows_verified_peers_a_refusal_a_revocation_and_ciphertext_only_at_the_relay()
    {
        using var sandbox = new CliSandbox();

        var demo = (await sandbox.RunAsync("demo")).Succeeded();

        Assert.Contains("billing sees", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("acts for user:alice, tool=invoices", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("-> 'approved'", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("mallory       refused by billing: AccessDenied", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("billing closed the payments-bot channel after", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains(": CredentialRevoked", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("invoices-bot  still talks to billing: 'approved'", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("the message text inside any of them: never", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("audit log: intact", demo.Stdout, StringComparison.Ordinal);
    }
}
