namespace SecureChannels.Cli.Tests;

/// <summary><c>securechannels revoke</c> and <c>revoke show</c>, and revocation lists in <c>credential verify</c>.</summary>
public sealed class RevokeCommandTests : IDisposable
{
    private readonly CliSandbox _sandbox = new();

    public void Dispose() => _sandbox.Dispose();

    [Fact]
    public async Task ARevokedSubjectIsRejected()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        var bob = await Scenario.DelegateToBobAsync(_sandbox);
        (await _sandbox.RunAsync("revoke", "--authority", "authority", "--subject", "bob.identity", "--out", "authority.revocations")).Succeeded();

        var rejected = (await _sandbox.RunAsync("credential", "verify", "bob.chain", "--trust", "authority.identity", "--revocations", "authority.revocations")).Exited(1);
        Assert.StartsWith("REJECTED: Revoked: Link 1 ", rejected.Lines[0], StringComparison.Ordinal);
        Assert.Contains(bob, rejected.Lines[0], StringComparison.Ordinal);

        var json = (await _sandbox.RunAsync("credential", "verify", "bob.chain", "--trust", "authority.identity", "--revocations", "authority.revocations", "--json")).Exited(1).Json;
        Assert.False(json.GetProperty("verified").GetBoolean());
        Assert.Equal("Revoked", json.GetProperty("kind").GetString());

        // Alice is not revoked.
        (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity", "--revocations", "authority.revocations")).Succeeded();
    }

    [Fact]
    public async Task RevokingAParentCredentialRejectsItsDelegations()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        await Scenario.DelegateToBobAsync(_sandbox);
        var id = (await _sandbox.RunAsync("credential", "show", "alice.chain", "--json")).Succeeded().Json.GetProperty("links")[0].GetProperty("credentialId").GetString()!;
        (await _sandbox.RunAsync("revoke", "--authority", "authority", "--credential", id, "--out", "authority.revocations")).Succeeded();

        var rejected = (await _sandbox.RunAsync("credential", "verify", "bob.chain", "--trust", "authority.identity", "--revocations", "authority.revocations")).Exited(1);
        Assert.StartsWith($"REJECTED: Revoked: Link 0 ({id})", rejected.Lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task MergingKeepsTheEntriesAndRaisesTheSequence()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);
        var first = (await _sandbox.RunAsync("revoke", "--authority", "authority", "--principal", "user:mallory", "--out", "authority.revocations", "--json")).Succeeded().Json;
        Assert.Equal(1UL, first.GetProperty("sequence").GetUInt64());
        Assert.Equal(scenario.Authority, first.GetProperty("issuer").GetString());

        (await _sandbox.RunAsync(
            "revoke", "--authority", "authority", "--subject", scenario.Alice, "--credential", "00112233445566778899aabbccddeeff",
            "--merge", "authority.revocations", "--out", "authority.revocations")).Succeeded();

        var shown = (await _sandbox.RunAsync("revoke", "show", "authority.revocations", "--json")).Succeeded().Json;
        Assert.Equal(2UL, shown.GetProperty("sequence").GetUInt64());
        var entries = shown.GetProperty("entries").EnumerateArray().Select(e => (e.GetProperty("kind").GetString(), e.GetProperty("value").GetString())).ToList();
        Assert.Equal(
            [("credential", "00112233445566778899aabbccddeeff"), ("subject", scenario.Alice), ("principal", "user:mallory")],
            entries);

        var text = (await _sandbox.RunAsync("revoke", "show", "authority.revocations")).Succeeded();
        Assert.Equal("2", text.Field("sequence"));
        Assert.Equal("3", text.Field("entries"));
    }

    [Fact]
    public async Task MergingAnotherAuthoritysListIsRefused()
    {
        await _sandbox.CreateIdentityAsync("authority");
        await _sandbox.CreateIdentityAsync("other");
        (await _sandbox.RunAsync("revoke", "--authority", "other", "--principal", "user:x", "--out", "other.revocations")).Succeeded();

        var refused = (await _sandbox.RunAsync("revoke", "--authority", "authority", "--merge", "other.revocations", "--out", "mine.revocations")).Exited(2);
        Assert.Contains("not a revocation list of", refused.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_sandbox.PathOf("mine.revocations")));
    }

    [Fact]
    public async Task AListWhoseSignatureWasAlteredIsBadInput()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        (await _sandbox.RunAsync("revoke", "--authority", "authority", "--principal", "user:x", "--out", "authority.revocations")).Succeeded();
        var bytes = await File.ReadAllBytesAsync(_sandbox.PathOf("authority.revocations"));
        bytes[^1] ^= 0x01;
        await File.WriteAllBytesAsync(_sandbox.PathOf("forged.revocations"), bytes);

        var result = (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity", "--revocations", "forged.revocations")).Exited(2);
        Assert.Contains("does not verify (BadSignature)", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AListOfAnAuthorityNotTrustedIsIgnoredWithAWarning()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);
        await _sandbox.CreateIdentityAsync("other");
        (await _sandbox.RunAsync("revoke", "--authority", "other", "--subject", scenario.Alice, "--out", "other.revocations")).Succeeded();

        var verified = (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity", "--revocations", "other.revocations")).Succeeded();
        Assert.Equal("VERIFIED", verified.Lines[0]);
        Assert.StartsWith("warning: other.revocations: ignored", verified.Stderr, StringComparison.Ordinal);
    }
}
