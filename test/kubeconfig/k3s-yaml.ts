/** What k3s writes to /etc/rancher/k3s/k3s.yaml on a server (certificates shortened): the one copy the kubeconfig tests share. */
export const k3sYaml = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi1DQS0tLS0t
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: LS0tLS1DRVJULS0tLS0=
    client-key-data: LS0tLS1LRVktLS0tLQ==
`;
