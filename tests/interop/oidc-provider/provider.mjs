// A real OpenID provider for tokend's interop test: client-credentials grant,
// JWT access tokens (RFC 9068, typ at+jwt) signed with ES256 and RS256 keys
// generated at start-up. Usage: PORT=NNNN node provider.mjs
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

function jwk(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'orders-service',
      client_secret: 'orders-service-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
  ],
  jwks: {
    keys: [
      jwk('ec', { namedCurve: 'P-256' }, 'es256-key', 'ES256'),
      jwk('rsa', { modulusLength: 2048 }, 'rs256-key', 'RS256'),
    ],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:tokend:orders',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'orders:read orders:write',
        audience: 'orders-api',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 300,
        jwt: { sign: { alg: process.env.SIGN_ALG || 'ES256' } },
      }),
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening at ${issuer}`);
});
