namespace SecureChannels.Cli.Tests;

/// <summary><c>securechannels credential issue|delegate|show|verify</c>.</summary>
public sealed class CredentialCommandTests : IDisposable
{
    private readonly CliSandbox _sandbox = new();

    public void Dispose() => _sandbox.Dispose();

    [Fact]
    public async Task AnIssuedCredentialVerifies()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);

        var verified = (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity")).Succeeded();
        Assert.Equal("VERIFIED", verified.Lines[0]);
        Assert.Equal(scenario.Alice, verified.Field("subject"));
        Assert.Equal(scenario.Authority, verified.Field("authority"));
        Assert.Equal("user:carol@example.com", verified.Field("principal"));
        Assert.Equal("1", verified.Field("hops"));
        Assert.Equal("env=prod|staging, role=billing", verified.Field("attributes"));
    }

    [Fact]
    public async Task IssueJsonDescribesTheCredential()
    {
        var authority = await _sandbox.CreateIdentityAsync("authority");
        var alice = await _sandbox.CreateIdentityAsync("alice");
        var json = (await _sandbox.RunAsync(
            "credential", "issue", "--authority", "authority", "--subject", "alice.identity", "--attr", "role=billing",
            "--valid-for", "1h30m", "--not-before", "2030-01-01T00:00:00Z", "--out", "alice.chain", "--json")).Succeeded().Json;

        Assert.Matches("^[0-9a-f]{32}$", json.GetProperty("credentialId").GetString());
        Assert.Equal(authority, json.GetProperty("issuer").GetString());
        Assert.Equal(alice, json.GetProperty("subject").GetString());
        Assert.Equal("self", json.GetProperty("principal").GetString());
        Assert.Equal("billing", json.GetProperty("attributes").GetProperty("role")[0].GetString());
        Assert.Equal("2030-01-01T00:00:00Z", json.GetProperty("notBefore").GetString());
        Assert.Equal("2030-01-01T01:30:00Z", json.GetProperty("notAfter").GetString());
        Assert.Equal(0, json.GetProperty("maxDelegationDepth").GetInt32());
        Assert.Equal(1, json.GetProperty("links").GetInt32());
        Assert.True(File.Exists(_sandbox.PathOf("alice.chain")));

        // Not valid before 2030: the verifier says so.
        var rejected = (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity")).Exited(1);
        Assert.StartsWith("REJECTED: NotYetValid:", rejected.Lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ANarrowerDelegationVerifiesWithTwoHops()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);
        var bob = await Scenario.DelegateToBobAsync(_sandbox);

        var text = (await _sandbox.RunAsync("credential", "verify", "bob.chain", "--trust", "authority.identity")).Succeeded();
        Assert.Equal("VERIFIED", text.Lines[0]);
        Assert.Equal("2", text.Field("hops"));

        var json = (await _sandbox.RunAsync("credential", "verify", "bob.chain", "--trust", "authority.identity", "--presenter", bob, "--json")).Succeeded().Json;
        Assert.True(json.GetProperty("verified").GetBoolean());
        Assert.Equal(bob, json.GetProperty("subject").GetString());
        Assert.Equal(scenario.Authority, json.GetProperty("authority").GetString());
        Assert.Equal("user:carol@example.com", json.GetProperty("principal").GetString());
        Assert.Equal(2, json.GetProperty("hops").GetInt32());
        var hops = json.GetProperty("chain").EnumerateArray().ToList();
        Assert.Equal([scenario.Authority, scenario.Alice], hops.Select(h => h.GetProperty("issuer").GetString()));
        Assert.Equal([scenario.Alice, bob], hops.Select(h => h.GetProperty("subject").GetString()));
        var attributes = json.GetProperty("attributes");
        Assert.Equal(["prod"], attributes.GetProperty("env").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal(["billing"], attributes.GetProperty("role").EnumerateArray().Select(v => v.GetString()));
    }

    [Theory]
    [InlineData("ValueOutsideParent", "--attr", "role=admin")]
    [InlineData("AttributeAdded", "--attr", "team=ops")]
    [InlineData("LaterExpiry", "--valid-for", "2h")]
    [InlineData("DelegationDepthExceeded", "--max-depth", "1")]
    public async Task AWiderDelegationIsRefusedWithTheReason(string widening, string option, string value)
    {
        await Scenario.IssueAliceAsync(_sandbox);
        await _sandbox.CreateIdentityAsync("bob");
        string[] arguments =
        [
            "credential", "delegate", "--holder", "alice", "--chain", "alice.chain", "--subject", "bob.identity",
            "--attr", "role=billing", option, value, "--out", "wide.chain",
        ];

        var refused = (await _sandbox.RunAsync(arguments)).Exited(1);
        Assert.StartsWith($"error: refused: Widened ({widening}): Link 1 widens its parent", refused.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_sandbox.PathOf("wide.chain")));
    }

    [Fact]
    public async Task ShowPrintsEveryLinkWithoutVerifying()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);
        var bob = await Scenario.DelegateToBobAsync(_sandbox);

        var text = (await _sandbox.RunAsync("credential", "show", "bob.chain")).Succeeded();
        Assert.Contains("2 link(s), NOT verified", text.Lines[0], StringComparison.Ordinal);
        Assert.Contains(text.Lines, l => l.StartsWith("link 0: root credential ", StringComparison.Ordinal));
        Assert.Contains(text.Lines, l => l.StartsWith("link 1: delegated credential ", StringComparison.Ordinal));

        var json = (await _sandbox.RunAsync("credential", "show", "bob.chain", "--json")).Succeeded().Json;
        Assert.False(json.GetProperty("verified").GetBoolean());
        var links = json.GetProperty("links").EnumerateArray().ToList();
        Assert.Equal(2, links.Count);
        Assert.Equal(scenario.Authority, links[0].GetProperty("issuer").GetString());
        Assert.Equal(bob, links[1].GetProperty("subject").GetString());
        Assert.Equal(links[0].GetProperty("credentialId").GetString(), links[1].GetProperty("parentId").GetString());
        Assert.Equal(scenario.Alice, json.GetProperty("issuerHistories")[0].GetProperty("identifier").GetString());
    }

    [Fact]
    public async Task AChainPresentedBySomeoneElseIsRejected()
    {
        var scenario = await Scenario.IssueAliceAsync(_sandbox);
        var json = (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity", "--presenter", scenario.Authority, "--json")).Exited(1).Json;
        Assert.False(json.GetProperty("verified").GetBoolean());
        Assert.Equal("SubjectMismatch", json.GetProperty("kind").GetString());
        Assert.Contains(scenario.Alice, json.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AChainFromAnAuthorityNotTrustedIsRejected()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        await _sandbox.CreateIdentityAsync("other");
        var rejected = (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "other.identity")).Exited(1);
        Assert.StartsWith("REJECTED: UntrustedIssuer:", rejected.Lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task TrustLimitedToSomeAttributesKeepsOnlyThose()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        var verified = (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity:env")).Succeeded();
        Assert.Equal("env=prod|staging", verified.Field("attributes"));
    }

    [Fact]
    public async Task CredentialsSurviveTheAuthoritysRotation()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        await File.WriteAllBytesAsync(_sandbox.PathOf("authority-old.identity"), await File.ReadAllBytesAsync(_sandbox.PathOf("authority.identity")));
        (await _sandbox.RunAsync("identity", "rotate", "--name", "authority", "--insecure-fast-kdf")).Succeeded();
        (await _sandbox.RunAsync("identity", "export", "--name", "authority", "--out", "authority.identity")).Succeeded();

        // Signed with the old key: verifies against the rotated history, which still has that key.
        (await _sandbox.RunAsync("credential", "verify", "alice.chain", "--trust", "authority.identity")).Succeeded();

        // Signed with the new key: a verifier holding only the old history cannot know that key.
        (await _sandbox.RunAsync("credential", "issue", "--authority", "authority", "--subject", "alice.identity", "--valid-for", "1h", "--out", "new.chain")).Succeeded();
        var rejected = (await _sandbox.RunAsync("credential", "verify", "new.chain", "--trust", "authority-old.identity")).Exited(1);
        Assert.StartsWith("REJECTED: BadSignature:", rejected.Lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACorruptChainFileIsATypedErrorWithExitTwo()
    {
        await Scenario.IssueAliceAsync(_sandbox);
        var bytes = await File.ReadAllBytesAsync(_sandbox.PathOf("alice.chain"));
        await File.WriteAllBytesAsync(_sandbox.PathOf("corrupt.chain"), bytes[..40]);

        var verified = (await _sandbox.RunAsync("credential", "verify", "corrupt.chain", "--trust", "authority.identity")).Exited(2);
        Assert.StartsWith("error: corrupt.chain: not a credential chain (Malformed): ", verified.Stderr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, verified.Stdout);

        var shown = (await _sandbox.RunAsync("credential", "show", "corrupt.chain")).Exited(2);
        Assert.Contains("(Malformed)", shown.Stderr, StringComparison.Ordinal);

        var missing = (await _sandbox.RunAsync("credential", "show", "absent.chain")).Exited(2);
        Assert.Contains("absent.chain: no such file", missing.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--valid-for", "1x", "is not a duration")]
    [InlineData("--valid-for", "0m", "is not a duration")]
    [InlineData("--attr", "Role=x", "is not an attribute name")]
    [InlineData("--principal", "group:x", "A principal is")]
    [InlineData("--subject", "I00", "neither an identifier")]
    [InlineData("--max-depth", "8", "--max-depth must be from 0 to 7")]
    [InlineData("--not-before", "yesterday", "is not an ISO 8601 time")]
    public async Task BadIssueArgumentsAreUsageErrors(string option, string value, string message)
    {
        await _sandbox.CreateIdentityAsync("authority");
        await _sandbox.CreateIdentityAsync("alice");
        var arguments = new Dictionary<string, string>
        {
            ["--authority"] = "authority",
            ["--subject"] = "alice.identity",
            ["--valid-for"] = "1h",
            ["--out"] = "x.chain",
            [option] = value,
        };

        var result = (await _sandbox.RunAsync(["credential", "issue", .. arguments.SelectMany(a => new[] { a.Key, a.Value })])).Exited(2);
        Assert.StartsWith("error: ", result.Stderr, StringComparison.Ordinal);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_sandbox.PathOf("x.chain")));
    }
}
