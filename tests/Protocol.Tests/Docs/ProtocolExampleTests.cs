using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Docs;

/// <summary>
/// docs/protocol.md §6 "Worked example": recomputes every example line from the stated inputs, so the
/// document and the code cannot drift apart, and checks the example decodes and verifies.
/// </summary>
public sealed class ProtocolExampleTests
{
    private static readonly DateTimeOffset ExampleTime = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task EveryExampleLineOfTheProtocolDocumentIsReproduced()
    {
        var documented = ProtocolDocument.ReadExamples("example");
        var computed = await ComputeExampleAsync();

        Assert.Equal(computed.Keys.Order(), documented.Keys.Order());
        var differences = computed
            .Where(c => documented[c.Key] != c.Value)
            .Select(c => $"docs/protocol.md example '{c.Key}' differs from the code:\n  doc:  {documented[c.Key]}\n  code: {c.Value}")
            .ToList();
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    [Fact]
    public void ExampleCredentialVerifiesAgainstTheExampleAuthority()
    {
        var documented = ProtocolDocument.ReadExamples("example");
        var authority = IdentityHistory.Decode(Convert.FromHexString(documented["authority-history"])).Verify();
        var signed = SignedCredential.Decode(Convert.FromHexString(documented["signed-credential"]));
        var verifier = new CredentialVerifier(new TrustAnchors().Trust(authority), new RevocationRegistry(), new FixedClock(ExampleTime.AddMinutes(30)));

        var verified = verifier.Verify(new CredentialChain([signed], []));

        Assert.Equal(documented["authority-id"], verified.Authority.ToString());
        Assert.Equal(documented["agent-id"], verified.Subject.ToString());
        Assert.Equal("user:alice@example.com", verified.Principal.ToString());
        Assert.Equal(["prod", "staging"], verified.Attributes.Entries["env"]);
    }

    private static async Task<Dictionary<string, string>> ComputeExampleAsync()
    {
        var clock = new FixedClock(ExampleTime);
        using var authoritySigner = InMemorySigner.Import(Enumerable.Repeat((byte)0x01, 32).ToArray());
        using var agentSigner = InMemorySigner.Import(Enumerable.Repeat((byte)0x02, 32).ToArray());
        var authority = await AgentIdentity.CreateAsync(authoritySigner, clock);
        var agent = await AgentIdentity.CreateAsync(agentSigner, clock);
        var credential = new Credential(
            Enumerable.Range(0, 16).Select(i => (byte)i).ToArray(),
            authority.Identifier,
            agent.Identifier,
            Principal.Parse("user:alice@example.com"),
            AttributeSet.Parse(["role=billing", "env=staging", "env=prod"]),
            ExampleTime,
            ExampleTime.AddHours(1),
            maxDelegationDepth: 1,
            parent: null);
        var signature = await SignatureDomain.SignAsync(authoritySigner, SignatureDomain.Credential, credential.Encoded);
        var signed = new SignedCredential(credential, authority.Verified.Current.ChangeHash, signature);
        return new Dictionary<string, string>
        {
            ["authority-change"] = Convert.ToHexStringLower(authority.History.Changes[0].Change.Encoded),
            ["authority-id"] = authority.Identifier.ToString(),
            ["authority-history"] = Convert.ToHexStringLower(authority.History.Encoded),
            ["agent-id"] = agent.Identifier.ToString(),
            ["credential"] = Convert.ToHexStringLower(credential.Encoded),
            ["signed-credential"] = Convert.ToHexStringLower(signed.Encoded),
        };
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
