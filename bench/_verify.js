const crypto=require('crypto');const jwt=require('jsonwebtoken');
const { loadEcKeyFile, generateEcPem } = require('../dist/src/core/keys.js');
const { AccessTokenVerifier } = require('../dist/src/core/access-token.js');
const fs=require('fs');fs.writeFileSync('/tmp/k.pem',generateEcPem());const key=loadEcKeyFile('/tmp/k.pem');
const keys={alg:'ES256',byKid:(k)=>k===key.kid?key:undefined};
const v=new AccessTokenVerifier(keys,{issuer:'i',audience:'a',clockSkew:30},{now:()=>Date.now()});
const now=Math.floor(Date.now()/1000);
const toks=Array.from({length:4000},(_,i)=>jwt.sign({iss:'i',aud:'a',sub:'usr_AAAAAAAAAAAAAAAAAAAAAA',username:'bench',roles:['user'],sid:'ses_AAAAAAAAAAAAAAAAAAAAAA',jti:'j'+i,iat:now,exp:now+900},key.signKey,{algorithm:'ES256',header:{alg:'ES256',typ:'at+jwt',kid:key.kid}}));
for(let r=0;r<5;r++){const t=process.hrtime.bigint();for(const tk of toks){if(!v.verify(tk).ok)throw 1}console.log('ours',(Number(process.hrtime.bigint()-t)/1e3/toks.length).toFixed(1));}
for(let r=0;r<3;r++){const t=process.hrtime.bigint();for(const tk of toks){jwt.verify(tk,key.verifyKey,{algorithms:['ES256']})}console.log('jwt only',(Number(process.hrtime.bigint()-t)/1e3/toks.length).toFixed(1));}
const input=Buffer.from(toks[0].slice(0,toks[0].lastIndexOf('.')));const sig=Buffer.from(toks[0].slice(toks[0].lastIndexOf('.')+1),'base64url');
for(let r=0;r<3;r++){const t=process.hrtime.bigint();for(const tk of toks){crypto.verify('sha256',input,{key:key.verifyKey,dsaEncoding:'ieee-p1363'},sig)}console.log('raw',(Number(process.hrtime.bigint()-t)/1e3/toks.length).toFixed(1));}
