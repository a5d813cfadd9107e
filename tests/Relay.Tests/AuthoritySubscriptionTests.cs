using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Hosting;
using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Peering;

namespace SecureChannels.Relay.Tests;

/// <summary>A relay subscribed to the authority of its agents: revocations close hops at once, and admission follows the published policy.</summary>
public sealed class AuthoritySubscriptionTests
{
    [Fact]
    public async Task A_revocation_at_the_authority_closes_the_agents_hop_and_a_published_admission_policy_judges_new_hops()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var folder = Directory.CreateTempSubdirectory("sc-relay-authority-").FullName;
        var authority = AuthorityApplication.Build([], kit.Authority, builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Authority:Endpoint"] = "127.0.0.1:0",
                ["Authority:MetricsEndpoint"] = "",
                ["Authority:SqlitePath"] = Path.Combine(folder, "authority.db"),
            });
            builder.Services.AddSingleton<TimeProvider>(kit.Time);
            builder.Logging.ClearProviders();
        });
        await using (authority)
        {
            await authority.StartAsync().WaitAsync(RelayTestKit.Guard);
            var server = authority.Services.GetRequiredService<AuthorityServer>();
            var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?>
            {
                ["Authority:Endpoint"] = server.EndPoint!.ToString(),
                ["Authority:Identifier"] = kit.Authority.Identifier.ToString(),
            });
            var subscriber = relay.App.Services.GetRequiredService<AuthoritySubscriber>();
            await RelayTestKit.UntilAsync(() => subscriber.Subscription?.Subscriptions == 1);

            var alice = await kit.CreateAgentAsync(["role=worker"], "user:alice");
            var bob = await kit.CreateAgentAsync(["role=worker"], "user:bob");
            var aliceLink = await kit.ConnectAsync(alice, relay);
            var bobLink = await kit.ConnectAsync(bob, relay);

            // A list far larger than a hop frame (64 KiB) still reaches the relay: its channel to the authority takes 4 MiB messages.
            for (var i = 0; i < 300; i++)
            {
                await server.Service.RevokeAsync(Caller.Operator(kit.Authority.Identifier), RevocationEntry.ForPrincipal(new Principal(PrincipalKind.User, $"{i:D4}-{new string('x', 240)}")), "bulk");
            }

            await server.Service.RevokeAsync(Caller.Operator(kit.Authority.Identifier), RevocationEntry.ForCredential(alice.Credentials[0].Leaf.Credential.Id), "left the team");
            Assert.True(server.Service.CurrentRevocations!.Encode().Length > 70_000);

            await aliceLink.Completion.WaitAsync(RelayTestKit.Guard);
            await RelayTestKit.UntilAsync(() => relay.Server.ConnectionCount == 1);
            await bobLink.PingAsync().AsTask().WaitAsync(RelayTestKit.Guard);
            Assert.Equal(301UL, kit.Revocations.Find(kit.Authority.Identifier)!.List.Sequence);
            Assert.Equal(1, subscriber.Subscription!.Subscriptions);

            // Admission from now on: only bob's principal.
            await server.Service.PublishPolicyAsync(Caller.Operator(kit.Authority.Identifier), "relay-admission", "peer.principal == \"user:bob\"");
            var channels = relay.App.Services.GetRequiredService<HopChannelFactory>();
            await RelayTestKit.UntilAsync(() => channels.Admission.Text == "peer.principal == \"user:bob\"");
            var carol = await kit.CreateAgentAsync(["role=worker"], "user:carol");
            var refused = await Assert.ThrowsAsync<SecureChannelException>(() => kit.OpenHopAsync(carol, relay));
            Assert.Equal(ChannelErrorCode.AccessDenied, refused.Code);
            await kit.ConnectAsync(await kit.CreateAgentAsync(["role=worker"], "user:bob"), relay);
            await authority.StopAsync().WaitAsync(RelayTestKit.Guard);
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(folder, recursive: true);
    }
}
