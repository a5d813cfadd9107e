using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

/// <summary>
/// An orchestrator acting for alice delegates to two sub-agents; a verifier agent subscribed to the authority
/// holds a channel with each of them and with bob's agent. Revocations must close exactly what depends on them.
/// </summary>
public sealed class RevocationPropagationTests
{
    private const string AnyCredentialed = "peer.chain_length >= 1";

    [Fact]
    public async Task Revoking_one_delegation_closes_exactly_the_channels_that_depend_on_it()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var world = await World.CreateAsync(kit);

        // The orchestrator withdraws one task's authority itself: it holds the parent credential.
        var sequence = await world.OrchestratorClient.RevokeAsync(RevocationEntry.ForCredential(world.First.Credentials[0].Leaf.Credential.Id), "task finished");

        var closed = await world.FirstChannel.Completion.WaitAsync(AuthorityTestKit.Guard);
        Assert.Equal(ChannelErrorCode.CredentialRevoked, closed.Code);
        Assert.Equal(sequence, world.Verifier.Revocations.Find(kit.Identity.Identifier)!.List.Sequence);
        await AuthorityTestKit.AssertCarriesAsync(world.SecondChannel, world.SecondRemote);
        await AuthorityTestKit.AssertCarriesAsync(world.OrchestratorChannel, world.OrchestratorRemote);
        await AuthorityTestKit.AssertCarriesAsync(world.BobChannel, world.BobRemote);
    }

    [Fact]
    public async Task Revoking_a_principal_closes_all_of_its_agents_channels_and_no_others()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var world = await World.CreateAsync(kit);

        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("user:alice")), "alice left");

        foreach (var channel in new[] { world.FirstChannel, world.SecondChannel, world.OrchestratorChannel })
        {
            Assert.Equal(ChannelErrorCode.CredentialRevoked, (await channel.Completion.WaitAsync(AuthorityTestKit.Guard)).Code);
        }

        await AuthorityTestKit.AssertCarriesAsync(world.BobChannel, world.BobRemote);
        var actingForAlice = await kit.Service.QueryAsync(Caller.Operator(kit.Identity.Identifier), new RegistryQuery(RegistryQueryKind.ActingFor, "user:alice"));
        Assert.Empty(actingForAlice);
    }

    [Fact]
    public async Task Revoking_the_orchestrators_credential_closes_its_whole_subtree()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var world = await World.CreateAsync(kit);

        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForCredential(world.Orchestrator.Credentials[0].Leaf.Credential.Id), "compromised");

        foreach (var channel in new[] { world.FirstChannel, world.SecondChannel, world.OrchestratorChannel })
        {
            Assert.Equal(ChannelErrorCode.CredentialRevoked, (await channel.Completion.WaitAsync(AuthorityTestKit.Guard)).Code);
        }

        await AuthorityTestKit.AssertCarriesAsync(world.BobChannel, world.BobRemote);
    }

    [Fact]
    public async Task An_agent_cannot_revoke_what_it_does_not_hold_and_revoking_twice_changes_nothing()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var world = await World.CreateAsync(kit);
        var asBob = await kit.ConnectAsync(world.Bob);

        var refused = await Assert.ThrowsAsync<AuthorityException>(() => asBob.RevokeAsync(RevocationEntry.ForCredential(world.First.Credentials[0].Leaf.Credential.Id), "not mine"));
        Assert.Equal(AuthorityErrorCode.Unauthorized, refused.Code);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asBob.RevokeAsync(RevocationEntry.ForPrincipal(Principal.Parse("user:alice")), "no"))).Code);

        // A sub-agent may withdraw its own credential; a second identical revocation publishes nothing new.
        var asFirst = await kit.ConnectAsync(world.First);
        var once = await asFirst.RevokeAsync(RevocationEntry.ForCredential(world.First.Credentials[0].Leaf.Credential.Id), "done");
        await asFirst.Completion.WaitAsync(AuthorityTestKit.Guard); // the authority itself honours the revocation at once
        asFirst = await kit.ConnectAsync(world.First, presentCredentials: false);
        var twice = await asFirst.RevokeAsync(RevocationEntry.ForCredential(world.First.Credentials[0].Leaf.Credential.Id), "done");
        Assert.Equal(once, twice);
        await AuthorityTestKit.AssertCarriesAsync(world.BobChannel, world.BobRemote);
    }

    [Fact]
    public async Task A_subscriber_that_was_offline_catches_up_when_it_subscribes_again()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var verifier = await kit.CreateAgentAsync();
        var client = await kit.ConnectAsync(verifier);
        await client.SubscribeAsync(verifier.Revocations);
        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("user:one")), "1");
        await AuthorityTestKit.UntilAsync(() => verifier.Revocations.Find(kit.Identity.Identifier)?.List.Sequence == 1);
        await client.DisposeAsync();

        // Offline: two more revocations, then an authority restart on the same store.
        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("user:two")), "2");
        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("user:three")), "3");
        await kit.Current!.StopAsync();
        await kit.StartAsync();

        var again = await kit.ConnectAsync(verifier);
        await again.SubscribeAsync(verifier.Revocations);
        await AuthorityTestKit.UntilAsync(() => verifier.Revocations.Find(kit.Identity.Identifier)?.List.Sequence == 3);
        Assert.NotNull(verifier.Revocations.Find(kit.Identity.Identifier)!.List.FindRevocation(
            new Credential(Credential.NewId(), kit.Identity.Identifier, verifier.Identifier, Principal.Parse("user:two"), AttributeSet.Empty, kit.Time.GetUtcNow(), kit.Time.GetUtcNow().AddHours(1), 0, null)));
        Assert.Equal(0, again.RejectedPushes);
    }

    /// <summary>The cast: alice's orchestrator with two sub-agents, bob's agent, and a verifier holding a channel with each.</summary>
    private sealed class World
    {
        public required AuthorityTestKit.Agent Orchestrator { get; init; }

        public required AuthorityTestKit.Agent First { get; init; }

        public required AuthorityTestKit.Agent Second { get; init; }

        public required AuthorityTestKit.Agent Bob { get; init; }

        public required AuthorityTestKit.Agent Verifier { get; init; }

        public required AuthorityClient OrchestratorClient { get; init; }

        public required SecureChannel OrchestratorChannel { get; init; }

        public required SecureChannel OrchestratorRemote { get; init; }

        public required SecureChannel FirstChannel { get; init; }

        public required SecureChannel FirstRemote { get; init; }

        public required SecureChannel SecondChannel { get; init; }

        public required SecureChannel SecondRemote { get; init; }

        public required SecureChannel BobChannel { get; init; }

        public required SecureChannel BobRemote { get; init; }

        public static async Task<World> CreateAsync(AuthorityTestKit kit)
        {
            var orchestrator = await kit.CreateAgentAsync();
            var first = await kit.CreateAgentAsync();
            var second = await kit.CreateAgentAsync();
            var bob = await kit.CreateAgentAsync();
            var verifier = await kit.CreateAgentAsync();
            await kit.EnrollAsync(orchestrator, "user:alice", ["role=orchestrator", "role=worker", "tool=search", "tool=mail"]);
            await kit.EnrollAsync(bob, "user:bob", ["role=worker"]);
            var orchestratorClient = await kit.ConnectAsync(orchestrator);
            foreach (var (sub, tool) in new[] { (first, "search"), (second, "mail") })
            {
                var now = kit.Time.GetUtcNow();
                var delegated = await CredentialIssuer.DelegateAsync(orchestrator.Identity, orchestrator.Credentials[0], sub.Identifier, AttributeSet.Parse(["role=worker", $"tool={tool}"]), now, now + TimeSpan.FromMinutes(30), 0);
                sub.Credentials = [await orchestratorClient.RegisterDelegationAsync(delegated)];
            }

            var verifierClient = await kit.ConnectAsync(verifier);
            await verifierClient.SubscribeAsync(verifier.Revocations);

            var pin = $"peer.identifier == \"{verifier.Identifier}\"";
            var (oc, orr) = await kit.ChannelAsync(orchestrator, pin, verifier, AnyCredentialed);
            var (fc, fr) = await kit.ChannelAsync(first, pin, verifier, AnyCredentialed);
            var (sc, sr) = await kit.ChannelAsync(second, pin, verifier, AnyCredentialed);
            var (bc, br) = await kit.ChannelAsync(bob, pin, verifier, AnyCredentialed);
            Assert.Equal(2, fr.Peer.ChainLength);
            Assert.Equal("user:alice", fr.Peer.Principal.ToString());
            return new World
            {
                Orchestrator = orchestrator,
                First = first,
                Second = second,
                Bob = bob,
                Verifier = verifier,
                OrchestratorClient = orchestratorClient,
                OrchestratorChannel = orr,
                OrchestratorRemote = oc,
                FirstChannel = fr,
                FirstRemote = fc,
                SecondChannel = sr,
                SecondRemote = sc,
                BobChannel = br,
                BobRemote = bc,
            };
        }
    }
}
